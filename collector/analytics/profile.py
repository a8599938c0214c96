"""Load profile, heat map, load-duration curve, peak demand and load factor (pure, numpy).

Demand is a rate: the quantity of a 15-minute bucket × 4, in unit per hour (kWh → kW).
Local clock fields come from the zone, so on a 25-hour DST day the repeated hour's quarter
hours count twice in the averages (as two samples) and in the heat map (as two hours' usage).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from collector.analytics.localtime import day_date, local_time
from collector.analytics.model import UsageGrid

__all__ = ["LoadProfile", "Peak", "downsample_curve", "load_profile"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_PER_HOUR = 4.0  # 15-minute quantity → rate per hour


@dataclass(frozen=True, slots=True)
class Peak:
    """The highest 15-minute demand (unit per hour) and the bucket it happened in."""

    demand: float
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class LoadProfile:
    """What a scope's usage looks like over a day and over the window.

    ``weekday`` / ``weekend``: average quantity per local quarter hour (96 values; NaN where no
    sample). Holidays count as weekend days. ``heat_days``: local dates; ``heat``: quantity per
    (local hour 0–23, date), shape ``(24, len(heat_days))``. ``duration``: 15-minute demand
    sorted from highest to lowest (the load-duration curve: value ``k`` is exceeded during
    ``k / len`` of the time). ``load_factor``: average demand / peak demand (0 when no usage).
    """

    weekday: F64
    weekend: F64
    heat_days: tuple[date, ...]
    heat: F64
    duration: F64
    peak: Peak | None
    average_demand: float
    load_factor: float


def _average(values: F64, quarter: I64, mask: npt.NDArray[np.bool_]) -> F64:
    sums = np.bincount(quarter[mask], weights=values[mask], minlength=96)
    counts = np.bincount(quarter[mask], minlength=96)
    out: F64 = np.full(96, np.nan)
    seen = counts > 0
    out[seen] = sums[seen] / counts[seen]
    return out


def load_profile(grid: UsageGrid, tz: str, holidays: Collection[date] = ()) -> LoadProfile:
    """The load profile of ``grid`` in zone ``tz``."""
    lt = local_time(grid.starts, tz)
    q = grid.quantity
    off = lt.weekday >= 5
    if holidays:
        hol = np.isin(lt.day, [(d - date(1970, 1, 1)).days for d in holidays])
        off = off | hol
    days, day_idx = np.unique(lt.day, return_inverse=True)
    heat = np.zeros((24, days.shape[0]))
    np.add.at(heat, (lt.hour, day_idx.reshape(-1)), q)
    demand = q * _PER_HOUR
    duration: F64 = np.sort(demand)[::-1]
    peak = None
    avg = float(demand.mean())
    if demand.size and float(demand.max()) > 0:
        j = int(np.argmax(demand))
        peak = Peak(float(demand[j]), int(grid.starts[j]), int(grid.starts[j]) + 900)
    return LoadProfile(
        weekday=_average(q, lt.quarter, ~off),
        weekend=_average(q, lt.quarter, off),
        heat_days=tuple(day_date(int(d)) for d in days),
        heat=heat,
        duration=duration,
        peak=peak,
        average_demand=avg,
        load_factor=avg / peak.demand if peak else 0.0,
    )


def downsample_curve(curve: F64, points: int) -> tuple[F64, F64]:
    """``(share_of_time, value)`` of a load-duration curve at ``points`` evenly spaced shares."""
    n = curve.shape[0]
    if n == 0 or points <= 0:
        return np.zeros(0), np.zeros(0)
    k = min(points, n)
    idx = np.linspace(0, n - 1, k).round().astype(np.int64)
    share: F64 = idx / n
    values: F64 = curve[idx]
    return share, values
