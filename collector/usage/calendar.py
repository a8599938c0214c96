"""Bucket grids in a time zone: 15-minute, hourly, daily and monthly edges as Unix seconds.

Daily and monthly buckets start at local midnights converted to UTC, so a DST day has 23 or
25 hours. 15-minute and hourly edges are the instants whose local clock time is a multiple of
15/60 minutes (in a zone at UTC−03:30 an hour starts at hh:30 UTC). Every real zone's offset
is a multiple of 15 minutes, so coarser buckets are exact sums of UTC 15-minute buckets.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from collector.errors import UsageError
from collector.usage.model import BUCKET_15M_S, Resolution

__all__ = ["bucket_edges", "local_hours", "rollup", "rollup_matrix", "zone"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


_ALWAYS_UTC = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Etc/Zulu"})


def zone(tz: str) -> ZoneInfo:
    """The IANA zone ``tz``; an unknown name is a UsageError."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"unknown time zone {tz!r}") from exc


def _offset_at(t: int, tzinfo: ZoneInfo) -> int:
    off = datetime.fromtimestamp(t, tzinfo).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def _offsets(instants: I64, tzinfo: ZoneInfo) -> I64:
    """UTC offset in seconds of each instant: one zoneinfo call per distinct UTC day, and per
    instant only on the rare days whose offset changes (DST transitions)."""
    if tzinfo.key in _ALWAYS_UTC:
        return np.zeros(instants.shape[0], dtype=np.int64)
    days = instants // 86400
    uniq, inverse = np.unique(days, return_inverse=True)
    inverse = inverse.reshape(-1)
    first = np.asarray([_offset_at(int(d) * 86400, tzinfo) for d in uniq], dtype=np.int64)
    last = np.asarray([_offset_at(int(d) * 86400 + 86399, tzinfo) for d in uniq], dtype=np.int64)
    result: I64 = first[inverse]
    for i in np.nonzero((first != last)[inverse])[0]:
        result[i] = _offset_at(int(instants[i]), tzinfo)
    return result


def _fixed_edges(start: float, end: float, step: int, tzinfo: ZoneInfo) -> I64:
    lo = int(np.floor(start / BUCKET_15M_S)) * BUCKET_15M_S - step
    hi = int(np.ceil(end / BUCKET_15M_S)) * BUCKET_15M_S + step
    cand = np.arange(lo, hi + 1, BUCKET_15M_S, dtype=np.int64)
    local = cand + _offsets(cand, tzinfo)
    edges = cand[local % step == 0]
    first = max(int(np.searchsorted(edges, start, side="right")) - 1, 0)
    last = int(np.searchsorted(edges, end, side="left"))
    out: I64 = edges[first : last + 1]
    return out


def _local_midnight(day: date, tzinfo: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tzinfo).timestamp())


def _calendar_edges(start: float, end: float, monthly: bool, tzinfo: ZoneInfo) -> I64:
    day = datetime.fromtimestamp(start, tzinfo).date()
    if monthly:
        day = day.replace(day=1)
    edges: list[int] = []
    while True:
        edge = _local_midnight(day, tzinfo)
        edges.append(edge)
        if edge >= end:
            break
        if monthly:
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        else:
            day = day + timedelta(days=1)
    return np.asarray(edges, dtype=np.int64)


def bucket_edges(start: float, end: float, resolution: Resolution | str, tz: str = "UTC") -> I64:
    """Edges ``e`` of the buckets overlapping ``[start, end)``: ``e[0] <= start``, ``e[-1] >= end``.

    Bucket ``i`` is ``[e[i], e[i+1])``. ``start``/``end`` are Unix seconds, ``end > start``.
    """
    if not end > start:
        raise UsageError(f"empty range: end {end} <= start {start}")
    res = Resolution(resolution)
    tzinfo = zone(tz)
    if res is Resolution.M15:
        return _fixed_edges(start, end, BUCKET_15M_S, tzinfo)
    if res is Resolution.H1:
        return _fixed_edges(start, end, 3600, tzinfo)
    return _calendar_edges(start, end, res is Resolution.MO1, tzinfo)


def local_hours(instants: I64, tz: str) -> I64:
    """Local hour of day (0–23) of each instant."""
    local = instants + _offsets(instants, zone(tz))
    hours: I64 = (local // 3600) % 24
    return hours


def rollup_matrix(
    starts_15m: I64, values: F64, resolution: Resolution | str, tz: str = "UTC"
) -> tuple[I64, F64]:
    """Sum 15-minute columns (``values[..., j]`` for bucket ``starts_15m[j]``, a contiguous
    UTC 15-minute grid) into ``resolution`` buckets in ``tz``. Returns ``(edges, sums)``."""
    if starts_15m.shape[0] == 0:
        raise UsageError("no 15-minute buckets to roll up")
    if np.any(starts_15m % BUCKET_15M_S) or np.any(np.diff(starts_15m) != BUCKET_15M_S):
        raise UsageError("starts_15m must be a contiguous UTC 15-minute grid")
    edges = bucket_edges(float(starts_15m[0]), float(starts_15m[-1] + BUCKET_15M_S), resolution, tz)
    if np.any(edges % BUCKET_15M_S):
        raise UsageError(f"zone {tz} has an offset that is not a multiple of 15 minutes")
    idx = np.searchsorted(edges, starts_15m, side="right") - 1
    firsts = np.nonzero(np.r_[True, idx[1:] != idx[:-1]])[0]
    sums: F64 = np.add.reduceat(values, firsts, axis=-1)
    used = idx[firsts]
    out_edges: I64 = np.r_[edges[used], edges[used[-1] + 1]].astype(np.int64)
    return out_edges, sums


def rollup(
    starts_15m: I64, values: F64, resolution: Resolution | str, tz: str = "UTC"
) -> tuple[I64, I64, F64]:
    """``(starts, ends, sums)`` of one series' 15-minute values rolled up into ``resolution``."""
    edges, sums = rollup_matrix(starts_15m, values, resolution, tz)
    return edges[:-1], edges[1:], sums


def utc(ts: float) -> datetime:
    """Unix seconds → aware UTC datetime (for messages)."""
    return datetime.fromtimestamp(ts, UTC)
