"""Local wall-clock fields of UTC instants in an IANA zone (pure; DST-correct)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from collector.errors import AnalyticsError, UsageError
from collector.usage.calendar import zone as usage_zone

__all__ = ["LocalTime", "day_date", "local_time", "zone"]

I64 = npt.NDArray[np.int64]


def zone(tz: str) -> ZoneInfo:
    """The IANA zone ``tz``; an unknown name is an AnalyticsError."""
    try:
        return usage_zone(tz)
    except UsageError as exc:
        raise AnalyticsError(str(exc)) from exc


def _offset(t: int, tzinfo: ZoneInfo) -> int:
    off = datetime.fromtimestamp(t, tzinfo).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def _offsets(instants: I64, tzinfo: ZoneInfo) -> I64:
    """UTC offset (s) of each instant: two zoneinfo calls per distinct UTC day, and one per
    instant only on the days whose offset changes (DST transitions)."""
    if instants.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    days = instants // 86_400
    uniq, inverse = np.unique(days, return_inverse=True)
    inverse = inverse.reshape(-1)
    first = np.asarray([_offset(int(d) * 86_400, tzinfo) for d in uniq], dtype=np.int64)
    last = np.asarray([_offset(int(d) * 86_400 + 86_399, tzinfo) for d in uniq], dtype=np.int64)
    out: I64 = first[inverse]
    for i in np.nonzero((first != last)[inverse])[0]:
        out[i] = _offset(int(instants[i]), tzinfo)
    return out


class LocalTime:
    """Local fields of ``instants`` in ``tz``: seconds since the local epoch, local day number
    (days since 1970-01-01 local), weekday (Monday 0), quarter hour of day (0–95), hour (0–23)."""

    __slots__ = ("day", "hour", "local", "quarter", "weekday")

    def __init__(self, instants: I64, tz: str) -> None:
        self.local: I64 = instants + _offsets(instants, zone(tz))
        self.day: I64 = self.local // 86_400
        self.weekday: I64 = (self.day + 3) % 7  # 1970-01-01 was a Thursday
        self.quarter: I64 = (self.local % 86_400) // 900
        self.hour: I64 = (self.local % 86_400) // 3600


def local_time(instants: I64, tz: str) -> LocalTime:
    """Local wall-clock fields of ``instants`` (Unix s) in ``tz``."""
    return LocalTime(instants, tz)


def day_date(day: int) -> date:
    """The calendar date of a local day number."""
    return datetime.fromtimestamp(day * 86_400, UTC).date()
