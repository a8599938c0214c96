"""Staff access: roles, API keys (hashed at rest) and the audit trail of state-changing calls.

Pure code: no I/O and no clock (times are passed in). Storage lives in
``collector.storage.access_store``; the HTTP side (role declarations, the authenticating
middleware, key and audit routes) in ``collector.api.access*``.

Public API::

    Role                          admin, billing, technician, read_only
    Role.grants(required) -> bool whether a key of this role may call a route needing ``required``
    issue_key(role=…, name=…, now=…, expires_at=…) -> IssuedKey   the secret shown once + record
    key_digest(secret) -> bytes   what is stored (SHA-256 of the secret)
    parse_key(secret) -> str      the public key id inside a secret (InvalidKey otherwise)
    StaffKey, Principal           a stored key; who is calling
    AuditEntry, outcome_of(status)
    PrincipalCache                a bounded, short-lived cache of key lookups
"""

from __future__ import annotations

from collector.access.audit import AuditEntry, outcome_of
from collector.access.cache import PrincipalCache
from collector.access.keys import (
    IssuedKey,
    Principal,
    StaffKey,
    issue_key,
    key_digest,
    parse_key,
)
from collector.access.roles import Role

__all__ = [
    "AuditEntry",
    "IssuedKey",
    "Principal",
    "PrincipalCache",
    "Role",
    "StaffKey",
    "issue_key",
    "key_digest",
    "outcome_of",
    "parse_key",
]
