"""A clock whose wall time runs ``factor`` times faster than real time, and can jump."""

from __future__ import annotations

import time
from datetime import datetime, timedelta


class CompressedClock:
    """``now()`` = ``start`` + real elapsed × ``factor`` + jumps; ``monotonic()`` stays real, so
    the agent's batching ages and timeouts keep their real meaning."""

    def __init__(self, start: datetime, factor: float, *, mono0: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("CompressedClock needs an aware datetime")
        if factor <= 0:
            raise ValueError("factor must be > 0")
        self._start = start
        self._factor = factor
        self._mono0 = time.monotonic() if mono0 is None else mono0
        self._offset_s = 0.0

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._mono0) * self._factor + self._offset_s
        return self._start + timedelta(seconds=elapsed)

    def monotonic(self) -> float:
        return time.monotonic()

    def jump(self, seconds: float) -> None:
        """Step the wall clock (an NTP correction, a dead RTC battery): forward or back."""
        self._offset_s += seconds
