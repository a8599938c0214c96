"""One-time enrollment codes: short, typed by a technician, never stored in the clear.

A code is 10 symbols from a 30-symbol alphabet without look-alikes (no 0/O, 1/I/L, U), shown in
two groups (``K7QF2-MX9PD``): about 49 bits, which rate limiting (``guessing``) and expiry make
unguessable in practice. At rest only ``code_digest`` (SHA-256 of the normalised code) is kept.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

from collector.errors import EnrollmentRefused

__all__ = ["ALPHABET", "CODE_LENGTH", "code_digest", "new_code", "normalise_code"]

ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH: Final = 10


def new_code() -> str:
    """A fresh random code, grouped for reading aloud (``XXXXX-XXXXX``)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_code(text: str) -> str:
    """The canonical form of what a technician typed: upper case, no separators or spaces.

    Raises ``EnrollmentRefused`` when it cannot be a code (wrong length or symbols)."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -_\t")
    if len(cleaned) != CODE_LENGTH or any(ch not in ALPHABET for ch in cleaned):
        raise EnrollmentRefused("malformed", "not an enrollment code (10 letters and digits)")
    return cleaned


def code_digest(code: str) -> str:
    """What is stored for a code: hex SHA-256 of its normalised form."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()
