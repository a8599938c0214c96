"""Invoice numbers: ``PREFIX-YYYY-000123``, gapless per (issuer, prefix, year).

Allocation happens in storage, in the transaction that finalizes the invoice, under a row lock
on the sequence row (never a PostgreSQL SEQUENCE: those skip values on rollback).
"""

from __future__ import annotations

import re

from collector.errors import ValidationFailed

_PREFIX_RE = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")


def validate_prefix(prefix: str) -> str:
    if not _PREFIX_RE.match(prefix):
        raise ValidationFailed(f"invoice prefix must be 1-10 capitals/digits, got {prefix!r}")
    return prefix


def format_invoice_number(prefix: str, year: int, value: int) -> str:
    """E.g. ``format_invoice_number("INV", 2026, 123) == "INV-2026-000123"``."""
    if value < 1:
        raise ValidationFailed(f"invoice sequence value must be >= 1, got {value}")
    return f"{validate_prefix(prefix)}-{year:04d}-{value:06d}"
