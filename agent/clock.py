"""Time as an input: the agent reads wall-clock and monotonic time only through a ``Clock``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Port for time: ``now()`` is aware UTC wall time, ``monotonic()`` seconds for intervals."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests move by hand with ``advance``."""

    def __init__(self, start: datetime, monotonic: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start
        self._mono = monotonic

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


def to_ms(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; pass an aware UTC datetime")
    return int(moment.timestamp() * 1000)
