"""Usage over time at any granularity in a customer's zone, and period over period (pure).

Buckets come from ``collector.usage.calendar`` (15 min, hour, day, month: DST days have 23 or
25 hours); weeks (local Monday midnights) and years (local 1 January) are groups of days and
months. Every bucket splits its quantity into measured and estimated parts.
"""

from __future__ import annotations

import calendar as cal
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from collector.analytics.localtime import zone
from collector.analytics.model import Granularity, UsageGrid
from collector.errors import AnalyticsError, UsageError
from collector.usage import Resolution, rollup_matrix

__all__ = [
    "Comparison",
    "Timeline",
    "Windows",
    "compare_periods",
    "comparison_windows",
    "timeline",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_BASE = {
    Granularity.M15: Resolution.M15,
    Granularity.H1: Resolution.H1,
    Granularity.D1: Resolution.D1,
    Granularity.W1: Resolution.D1,
    Granularity.MO1: Resolution.MO1,
    Granularity.Y1: Resolution.MO1,
}


@dataclass(frozen=True, slots=True)
class Timeline:
    """Usage per bucket ``[starts[i], ends[i])``: ``quantity`` = ``measured`` + ``estimated``."""

    granularity: Granularity
    tz: str
    starts: I64
    ends: I64
    quantity: F64
    estimated: F64

    @property
    def measured(self) -> F64:
        out: F64 = self.quantity - self.estimated
        return out

    @property
    def total(self) -> float:
        return float(self.quantity.sum())

    @property
    def total_estimated(self) -> float:
        return float(self.estimated.sum())


def _regroup(edges: I64, sums: F64, keys: list[object]) -> tuple[I64, F64]:
    """Merge adjacent buckets with equal ``keys`` (one key per bucket)."""
    firsts = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
    idx = np.asarray(firsts, dtype=np.int64)
    merged: F64 = np.add.reduceat(sums, idx, axis=-1)
    out_edges: I64 = np.r_[edges[idx], edges[-1:]].astype(np.int64)
    return out_edges, merged


def _week_key(edge: int, tz: str) -> object:
    d = datetime.fromtimestamp(edge, zone(tz)).date()
    return d - timedelta(days=d.weekday())


def _year_key(edge: int, tz: str) -> object:
    return datetime.fromtimestamp(edge, zone(tz)).year


def timeline(grid: UsageGrid, granularity: Granularity | str, tz: str = "UTC") -> Timeline:
    """``grid`` summed into ``granularity`` buckets of zone ``tz``. The first and last bucket may
    be partly outside the grid (they hold only the grid's part of them)."""
    gran = Granularity(granularity)
    zone(tz)
    values = np.stack([grid.quantity, grid.estimated])
    try:
        edges, sums = rollup_matrix(grid.starts, values, _BASE[gran], tz)
    except UsageError as exc:
        raise AnalyticsError(str(exc)) from exc
    if gran is Granularity.W1:
        edges, sums = _regroup(edges, sums, [_week_key(int(e), tz) for e in edges[:-1]])
    elif gran is Granularity.Y1:
        edges, sums = _regroup(edges, sums, [_year_key(int(e), tz) for e in edges[:-1]])
    # Whole-calendar edges for regrouped buckets: snap the first start / last end outwards.
    if gran in (Granularity.W1, Granularity.Y1):
        edges = edges.copy()
        edges[0] = _calendar_floor(int(edges[0]), gran, tz)
        edges[-1] = _calendar_ceil(int(edges[-1]), gran, tz)
    return Timeline(gran, tz, edges[:-1], edges[1:], sums[0], sums[1])


def _midnight(d: date, tz: str) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=zone(tz)).timestamp())


def _calendar_floor(t: int, gran: Granularity, tz: str) -> int:
    d = datetime.fromtimestamp(t, zone(tz)).date()
    d = d - timedelta(days=d.weekday()) if gran is Granularity.W1 else date(d.year, 1, 1)
    return _midnight(d, tz)


def _calendar_ceil(t: int, gran: Granularity, tz: str) -> int:
    floor = _calendar_floor(t, gran, tz)
    if floor == t:
        return t
    d = datetime.fromtimestamp(floor, zone(tz)).date()
    nxt = d + timedelta(days=7) if gran is Granularity.W1 else date(d.year + 1, 1, 1)
    return _midnight(nxt, tz)


# Period over period ------------------------------------------------------------------------


def _shift_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, cal.monthrange(year, month)[1]))


def _local(t: datetime, tz: str) -> datetime:
    if t.tzinfo is None:
        raise AnalyticsError("instants need a time zone")
    return t.astimezone(zone(tz))


def _at(d: date, like: datetime, tz: str) -> datetime:
    return datetime(d.year, d.month, d.day, like.hour, like.minute, tzinfo=zone(tz))


@dataclass(frozen=True, slots=True)
class Windows:
    """The window asked about, the one before it, and the same window a year earlier."""

    current: tuple[datetime, datetime]
    previous: tuple[datetime, datetime]
    year_ago: tuple[datetime, datetime]


def comparison_windows(start: datetime, end: datetime, tz: str) -> Windows:
    """The previous and year-ago windows of ``[start, end)`` in local wall-clock terms.

    Whole local months (start and end on a 1st at midnight) step back by the same number of
    months (March → February); any other window steps back by its length in local days and
    clock time. The year-ago window has the same local dates a year earlier (29 February →
    28 February)."""
    a, b = _local(start, tz), _local(end, tz)
    if not b > a:
        raise AnalyticsError("end must be after start")
    midnight = a.time() == b.time() == datetime.min.time()
    if midnight and a.day == 1 and b.day == 1:
        months = (b.year - a.year) * 12 + b.month - a.month
        prev = (_at(_shift_months(a.date(), -months), a, tz), a)
    else:
        days = (b.replace(tzinfo=None) - a.replace(tzinfo=None))
        pa = a.replace(tzinfo=None) - days
        prev = (datetime(pa.year, pa.month, pa.day, pa.hour, pa.minute, tzinfo=zone(tz)), a)
    ya = (_at(_shift_months(a.date(), -12), a, tz), _at(_shift_months(b.date(), -12), b, tz))
    return Windows((a, b), prev, ya)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Totals of the current, previous and year-ago windows, and relative changes (None when
    the earlier total is 0)."""

    current: float
    previous: float
    year_ago: float
    current_estimated: float
    change_vs_previous: float | None
    change_vs_year_ago: float | None


def _change(now: float, before: float) -> float | None:
    return (now - before) / before if before > 0 else None


def compare_periods(current: UsageGrid, previous: UsageGrid, year_ago: UsageGrid) -> Comparison:
    """This window vs the previous one vs the same window last year."""
    return Comparison(
        current.total,
        previous.total,
        year_ago.total,
        current.total_estimated,
        _change(current.total, previous.total),
        _change(current.total, year_ago.total),
    )
