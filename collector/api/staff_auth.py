"""Staff authentication: bearer tokens for every staff route (ingest, usage, billing).

Tokens are configured as SHA-256 digests (``api.staff_tokens = ["sha256:<hex>", …]``; make one
with ``tally-collector staff-token``), so the configuration never holds a usable secret. A
request must send ``Authorization: Bearer <token>``. ``/health`` stays public for load
balancers; the customer portal (``/portal``) has its own customer tokens. With no staff tokens
configured the staff API is open, which the runner allows only on a loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import HTTPException, Request

__all__ = ["StaffAuth", "hash_token", "require_staff"]

PUBLIC_PATHS = frozenset({"/health"})


def hash_token(token: str) -> str:
    """The configuration form of a token: ``sha256:<hex digest>``."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StaffAuth:
    """The accepted token digests."""

    digests: frozenset[str]

    @classmethod
    def from_config(cls, entries: Iterable[str]) -> StaffAuth:
        """Entries are ``sha256:<hex>`` digests (a bare token is hashed, for development)."""
        return cls(frozenset(e if e.startswith("sha256:") else hash_token(e) for e in entries))

    def accepts(self, token: str) -> bool:
        digest = hash_token(token)
        return any(hmac.compare_digest(digest, d) for d in self.digests)


def require_staff(request: Request) -> None:
    """FastAPI dependency: 401 unless a configured staff token is presented."""
    auth: StaffAuth | None = getattr(request.app.state, "staff_auth", None)
    if auth is None or request.url.path in PUBLIC_PATHS:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token or not auth.accepts(token.strip()):
        raise HTTPException(
            401, "staff token required", headers={"WWW-Authenticate": 'Bearer realm="tally"'}
        )
