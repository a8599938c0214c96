"""Value objects of the analytics core: a usage grid, scopes, granularities and results.

Times are Unix seconds (UTC, ``int64``); quantities are in the series' unit per 15-minute
bucket (kWh, m³, …). Demand figures are rates: quantity per hour (a 15-minute quantity × 4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from collector.errors import AnalyticsError

__all__ = [
    "BUCKET_S",
    "Granularity",
    "ScopeKind",
    "SeriesWindow",
    "UsageGrid",
]

BUCKET_S: Final = 900
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class Granularity(enum.StrEnum):
    """Bucket sizes of a usage timeline. Days, weeks (Monday to Monday), months and years
    follow local midnights of the zone, so a DST day lasts 23 or 25 hours."""

    M15 = "15m"
    H1 = "1h"
    D1 = "1d"
    W1 = "1w"
    MO1 = "1mo"
    Y1 = "1y"


class ScopeKind(enum.StrEnum):
    """What a figure is about: one meter (series), a site (every meter of one device), a
    customer (its meters while subscribed), a plan (every subscription on its versions) or the
    whole fleet (every series of one unit)."""

    METER = "meter"
    SITE = "site"
    CUSTOMER = "customer"
    PLAN = "plan"
    FLEET = "fleet"


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """Usage of ``series_id`` counts in ``[start, end)`` (Unix s; ``None`` = unbounded).

    A customer's meter counts only while it is subscribed to that customer (a bucket counts if
    its start lies in the window, as billing assigns it)."""

    series_id: int
    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise AnalyticsError(f"empty window for series {self.series_id}")


@dataclass(frozen=True, slots=True)
class UsageGrid:
    """Usage of a scope on a contiguous UTC 15-minute grid: bucket ``j`` is
    ``[starts[j], starts[j] + 900)``. ``estimated`` is the part of ``quantity`` estimated by
    VEE; ``readings`` the number of readings behind each bucket."""

    starts: I64
    quantity: F64
    estimated: F64
    readings: I64

    def __post_init__(self) -> None:
        n = self.starts.shape[0]
        if n == 0:
            raise AnalyticsError("a usage grid needs at least one 15-minute bucket")
        if any(a.shape != (n,) for a in (self.quantity, self.estimated, self.readings)):
            raise AnalyticsError("usage grid arrays must have one value per bucket")
        if int(self.starts[0]) % BUCKET_S or (
            n > 1 and bool(np.any(np.diff(self.starts) != BUCKET_S))
        ):
            raise AnalyticsError("usage grid starts must be a contiguous 15-minute grid")

    @property
    def start(self) -> int:
        return int(self.starts[0])

    @property
    def end(self) -> int:
        return int(self.starts[-1]) + BUCKET_S

    @property
    def total(self) -> float:
        return float(self.quantity.sum())

    @property
    def total_estimated(self) -> float:
        return float(self.estimated.sum())

    def slice(self, start: int, end: int) -> UsageGrid:
        """The buckets starting in ``[start, end)`` (both on the 15-minute grid)."""
        j0 = max((start - self.start) // BUCKET_S, 0)
        j1 = min((end - self.start) // BUCKET_S, self.starts.shape[0])
        return UsageGrid(
            self.starts[j0:j1], self.quantity[j0:j1], self.estimated[j0:j1], self.readings[j0:j1]
        )
