"""Sign-in codes and sessions: value objects and the rules of their lifetime (pure, time passed
in, randomness passed in).

* A **sign-in code** is created by staff for one customer. It is short enough to type (ten
  characters of an alphabet without look-alikes, about 50 bits), is sent by e-mail as a code and
  as a link, is valid for ``CODE_TTL`` and works **once**. Only its SHA-256 is stored.
* Redeeming a code (or a long-lived portal token, for customers who were given one) creates a
  **session**: a 256-bit random id in an ``HttpOnly``, ``SameSite=Strict`` cookie; the database
  holds its SHA-256, the customer (or staff member), a CSRF token, and an absolute expiry
  (``SESSION_TTL``). Signing out, or staff revoking a customer's access, ends it at once.
* Every state-changing form carries the session's CSRF token, and every POST is refused when
  the browser says it comes from another origin.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from collector.errors import ValidationFailed

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "CODE_TTL",
    "SESSION_TTL",
    "Audience",
    "Session",
    "csrf_matches",
    "digest",
    "make_code",
    "normalize_code",
]

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U (look-alikes)
CODE_LENGTH = 10
CODE_TTL = timedelta(minutes=30)
SESSION_TTL = timedelta(hours=12)


class Audience(StrEnum):
    """Who a session is for."""

    PORTAL = "portal"
    CONSOLE = "console"


def digest(secret: str) -> bytes:
    """What is stored of a code, token or session id: its SHA-256."""
    return hashlib.sha256(secret.encode()).digest()


def make_code(random_bytes: bytes) -> str:
    """A code of ``CODE_LENGTH`` characters from ``random_bytes`` (at least that many bytes;
    a byte maps to a character with a bias below 1 %: 256 % 30 = 16)."""
    if len(random_bytes) < CODE_LENGTH:
        raise ValidationFailed(f"need {CODE_LENGTH} random bytes")
    return "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in random_bytes[:CODE_LENGTH])


def normalize_code(text: str) -> str:
    """A code as typed: spaces and dashes dropped, upper case."""
    return "".join(ch for ch in text.upper() if ch not in " -\t")


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the session's."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: ``customer_id`` for the portal, ``staff`` for the console."""

    audience: Audience
    customer_id: int | None
    staff: str | None
    csrf: str
    created_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        if (self.audience is Audience.PORTAL) != (self.customer_id is not None):
            raise ValidationFailed("a portal session belongs to exactly one customer")
        if self.expires_at <= self.created_at:
            raise ValidationFailed("a session must expire after it starts")

    def live(self, now: datetime) -> bool:
        return self.created_at <= now < self.expires_at
