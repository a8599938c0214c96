"""Validated request values shared by the routers: the checks happen at the HTTP boundary, so
a value the database cannot hold is a 422 with a clear message, never a 500.

* ``Id``/``IdQuery``: database ids (``bigint``): 1 … 2⁶³−1.
* ``Text``/``TextQuery``: strings without NUL bytes (PostgreSQL text cannot hold them).
* ``When``: a time between ``MIN_TIME`` and ``MAX_TIME``, so arithmetic on it (periods, time
  zones, horizons) cannot overflow; naive times keep their meaning (UTC where a route says so).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import Path, Query
from pydantic import AfterValidator, Field

__all__ = [
    "BIGINT_MAX",
    "MAX_TIME",
    "MIN_TIME",
    "Id",
    "IdQuery",
    "NoNul",
    "When",
    "check_time",
]

BIGINT_MAX: Final = 2**63 - 1
MIN_TIME: Final = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME: Final = datetime(3000, 1, 1, tzinfo=UTC)


def check_time(value: datetime) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not MIN_TIME <= aware < MAX_TIME:
        raise ValueError(
            f"time must be between {MIN_TIME:%Y-%m-%d} and {MAX_TIME:%Y-%m-%d} (UTC)"
        )
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL bytes are not allowed")
    return value


When = Annotated[datetime, AfterValidator(check_time)]
NoNul = Annotated[str, AfterValidator(_no_nul)]
Id = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
IdQuery = Annotated[int | None, Query(ge=1, le=BIGINT_MAX)]
BodyId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
