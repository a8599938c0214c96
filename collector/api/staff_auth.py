"""Configured staff tokens (the form before staff keys), kept working as admin credentials.

Tokens are configured as SHA-256 digests (``api.staff_tokens = ["sha256:<hex>", …]``; make one
with ``tally-collector staff-token``), so the configuration never holds a usable secret. A
request sends ``Authorization: Bearer <token>`` and acts with the admin role. Staff keys with
roles (``tally-collector keys create``) are the preferred credentials: see
``collector.api.access`` and docs/security.md.
"""

from __future__ import annotations

import hashlib

__all__ = ["hash_token", "require_staff"]


def hash_token(token: str) -> str:
    """The configuration form of a token: ``sha256:<hex digest>``."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def require_staff() -> None:
    """Deprecated: declares no role. Routes must declare one with ``access.requires(Role…)``;
    a route that does not is treated as admin-only and fails the route walk test."""
