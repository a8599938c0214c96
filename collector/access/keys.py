"""Staff API keys: issuing, parsing and the stored record.

A key reads ``tally_<id>_<secret>``: ``id`` is 12 hex digits, public (listed, audited, used to
revoke), ``secret`` 32 random bytes (``secrets.token_urlsafe``). Only SHA-256 of the whole key
is stored. A fast hash is enough here because the key is not a password: with 256 bits of
entropy nobody can guess a preimage, so slow password hashes (bcrypt, argon2) would only make
every request slower without adding protection. A database leak therefore reveals no usable key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from collector.access.roles import Role
from collector.errors import InvalidKey

__all__ = ["IssuedKey", "Principal", "StaffKey", "issue_key", "key_digest", "parse_key"]

PREFIX: Final = "tally_"
_KEY_RE: Final = re.compile(r"^tally_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
MAX_NAME: Final = 200


@dataclass(frozen=True, slots=True)
class StaffKey:
    """A stored staff key (never the secret)."""

    key_id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``secret`` is shown once to whoever asked for it, ``key`` is what is stored."""

    secret: str
    key: StaffKey

    @property
    def digest(self) -> bytes:
        return key_digest(self.secret)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a staff key, a configured token, or the open loopback API."""

    actor: str  # "key:<id>", "token:<digest prefix>" or "open"
    role: Role
    key_id: str | None = None
    expires_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


def key_digest(secret: str) -> bytes:
    """SHA-256 of the whole key, the only form that is stored."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def parse_key(secret: str) -> str:
    """The public id of a well-formed key; ``InvalidKey`` for anything else."""
    m = _KEY_RE.match(secret)
    if m is None:
        raise InvalidKey("not a Tally staff key")
    return m[1]


def issue_key(
    *, role: Role, name: str, now: datetime, created_by: str, expires_at: datetime | None = None
) -> IssuedKey:
    """A fresh random key for ``role``; ``expires_at`` must be after ``now``."""
    if now.tzinfo is None or (expires_at is not None and expires_at.tzinfo is None):
        raise InvalidKey("times need a time zone")
    if expires_at is not None and expires_at <= now:
        raise InvalidKey("expires_at must be in the future")
    name = name.strip()
    if not name or len(name) > MAX_NAME or "\x00" in name:
        raise InvalidKey(f"name must be 1 to {MAX_NAME} printable characters")
    key_id = secrets.token_hex(6)
    secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return IssuedKey(
        secret=secret,
        key=StaffKey(key_id, name, role, now, created_by, expires_at, None),
    )
