"""Inputs of the vectorised engine: interval usage and subscription periods as numpy arrays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from collector.errors import RatingError
from collector.rating.units import UNITS

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class IntervalUsage:
    """Interval usage of one meter (e.g. ``energy`` in Wh) for many subscriptions.

    Row ``i``: subscription index ``subscription[i]`` used ``quantity[i]`` (float, in ``unit``)
    in the interval ``[start[i], start[i] + interval_seconds)`` (Unix seconds, UTC). Rows need
    not be sorted but must be unique per (subscription, start); a row belongs to a period and
    a TOU period by its ``start``. Quantities must be finite; a negative one is rejected or
    flagged by each charge's ``negative_usage`` (never clamped). Charges select a
    meter by their ``meter`` name. ``multiplier`` (optional, one exact ``Decimal`` per
    subscription, e.g. a CT ratio of the installation) multiplies the readings on top of the
    charge's own ``multiplier``.
    """

    unit: str
    interval_seconds: int
    subscription: I32
    start: I64
    quantity: F64
    meter: str = "default"
    multiplier: tuple[Decimal, ...] | None = None

    def __post_init__(self) -> None:
        if self.multiplier is not None and any(
            not isinstance(m, Decimal) or not m.is_finite() or m <= 0 for m in self.multiplier
        ):
            raise RatingError("meter multipliers must be positive Decimals")
        if self.unit not in UNITS:
            raise RatingError(f"unknown meter unit {self.unit!r}")
        if self.interval_seconds <= 0:
            raise RatingError("interval_seconds must be positive")
        n = self.subscription.shape[0]
        if self.start.shape != (n,) or self.quantity.shape != (n,):
            raise RatingError("subscription, start and quantity must be 1-D arrays of one length")
        if (
            self.subscription.dtype != np.int32
            or self.start.dtype != np.int64
            or self.quantity.dtype != np.float64
        ):
            raise RatingError(
                "dtypes must be int32 (subscription), int64 (start), float64 (quantity)"
            )


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """The rating period of each subscription (index = position), all arrays of length n.

    ``period_start``/``period_end``: the half-open service period ``[start, end)`` being rated
    (Unix seconds UTC; computed by billing in the customer's zone). ``cycle_start``/``cycle_end``:
    the full billing cycle the period belongs to; recurring fees are prorated by
    ``days(period) / days(cycle)`` (days = duration rounded to whole days, so 23/25-hour DST
    days count as one). Omitted: the period is a whole cycle. ``previous_peaks``: per ratcheted
    demand charge id, an ``(n, k)`` float array of the billed-unit peak demand of the previous
    ``k`` months, most recent last, NaN where unknown.
    """

    period_start: I64
    period_end: I64
    cycle_start: I64 | None = None
    cycle_end: I64 | None = None
    previous_peaks: Mapping[str, F64] = field(default_factory=dict)
    # minor units billed on interim invoices of this period (progressive billing), per sub
    billed_in_advance: I64 | None = None

    def __post_init__(self) -> None:
        n = self.period_start.shape[0]
        arrays = [self.period_start, self.period_end]
        if (self.cycle_start is None) != (self.cycle_end is None):
            raise RatingError("give both cycle_start and cycle_end, or neither")
        if self.cycle_start is not None and self.cycle_end is not None:
            arrays += [self.cycle_start, self.cycle_end]
        if self.billed_in_advance is not None:
            arrays.append(self.billed_in_advance)
            if np.any(self.billed_in_advance < 0):
                raise RatingError("billed_in_advance must be non-negative")
        for a in arrays:
            if a.shape != (n,) or a.dtype != np.int64:
                raise RatingError("period/cycle bounds must be int64 arrays of one length")
        if np.any(self.period_end <= self.period_start):
            raise RatingError("every period must end after it starts")
        for cid, peaks in self.previous_peaks.items():
            if peaks.ndim != 2 or peaks.shape[0] != n or peaks.dtype != np.float64:
                raise RatingError(
                    f"previous_peaks[{cid!r}] must be a float64 array of shape (n, k)"
                )

    @property
    def count(self) -> int:
        """Number of subscriptions."""
        return int(self.period_start.shape[0])
