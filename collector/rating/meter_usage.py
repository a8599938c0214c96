"""One meter's interval usage prepared for rating: quantised, filtered to periods, summed.

Readings become integer micro-units (``rint(value * 1e6)``, half to even) once; every sum
after that is exact. Sums per subscription, per (subscription, TOU period) and window peaks
are computed with ``bincount``/``maximum.at``/``reduceat`` over whole arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from collector.errors import RatingError
from collector.rating.inputs import IntervalUsage, Subscriptions
from collector.rating.intmath import exact_sums, narrow, run_starts
from collector.rating.tou_table import PeriodTable

I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
_MAX_READING = 9.0e12  # units; keeps micro-units and per-period sums inside int64


@dataclass(frozen=True, slots=True)
class Windows:
    """Energy per demand window: subscription, window start (Unix s), micro-units."""

    subscription: I32
    start: I64
    energy: I64


class MeterUsage:
    """Quantised readings of one meter, restricted to each subscription's period."""

    def __init__(self, usage: IntervalUsage, subscriptions: Subscriptions) -> None:
        n = subscriptions.count
        sub, start, q = usage.subscription, usage.start, usage.quantity
        qmin = 0.0
        if sub.size:
            lo, hi = int(sub.min()), int(sub.max())
            if lo < 0 or hi >= n:
                raise RatingError(f"meter {usage.meter!r}: subscription index outside 0..{n - 1}")
            qmin, qmax = float(q.min()), float(q.max())
            if not qmin >= -_MAX_READING or not qmax <= _MAX_READING:
                raise RatingError(
                    f"meter {usage.meter!r}: quantities must be finite and within ±{_MAX_READING:g}"
                )
        scaled = np.multiply(q, 1e6)
        qm = np.rint(scaled, out=scaled).astype(np.int64)
        ps, pe = subscriptions.period_start, subscriptions.period_end
        if n and start.size and ps.min() == ps.max() and pe.min() == pe.max():
            # one period for every subscription (a batch run): compare with scalars, and skip
            # the row-wise test entirely when all readings are inside it
            if not (int(start.min()) >= ps[0] and int(start.max()) < pe[0]):
                inside = (start >= ps[0]) & (start < pe[0])
                sub, start, qm = sub[inside], start[inside], qm[inside]
        elif start.size and not _all_inside(sub, start, ps, pe):
            inside = (start >= ps[sub]) & (start < pe[sub])
            sub, start, qm = sub[inside], start[inside], qm[inside]
        # negative readings leave the billed rows; their exact total (micro-units, positive)
        # per subscription is kept so that each charge rejects or flags them
        self.negative: I64 | None = None
        self.negative_count = 0
        neg = qm < 0 if qmin < 0 else None
        if neg is not None and neg.any():
            self.negative_count = int(neg.sum())
            self.negative = narrow(exact_sums(sub[neg], -qm[neg], n))
            if self.negative.dtype == object:
                raise RatingError(f"meter {usage.meter!r}: negative total too large")
            keep = ~neg
            sub, start, qm = sub[keep], start[keep], qm[keep]
        self.meter = usage.meter
        self.unit = usage.unit
        self.interval_seconds = usage.interval_seconds
        self.subscription: I32 = sub
        self.start: I64 = start
        self.quantity: I64 = qm
        self.count = n
        self._totals: I64 | None = None
        self.multiplier_index: I32 | None = None
        self.multiplier_values: list[Fraction] = []
        if usage.multiplier is not None:
            if len(usage.multiplier) != n:
                raise RatingError(f"meter {usage.meter!r}: one multiplier per subscription")
            distinct = sorted(set(usage.multiplier))
            position = {d: j for j, d in enumerate(distinct)}
            self.multiplier_values = [Fraction(d) for d in distinct]
            self.multiplier_index = np.array(
                [position[d] for d in usage.multiplier], dtype=np.int32
            )
        self._periods: tuple[PeriodTable, I16] | None = None
        self._period_sums: tuple[PeriodTable, int, I64] | None = None

    def time_range(self) -> tuple[int, int] | None:
        """``(first, last)`` reading start, or None without readings."""
        if not self.start.size:
            return None
        return int(self.start.min()), int(self.start.max())

    def totals(self) -> I64:
        """Exact micro-unit total per subscription (from the period totals when known)."""
        if self._totals is None:
            if self._period_sums is not None:
                self._totals = narrow(self._period_sums[2].sum(axis=1))
            else:
                self._totals = exact_sums(self.subscription, self.quantity, self.count)
        return self._totals

    def period_totals(self, table: PeriodTable, periods: int) -> I64:
        """Exact micro-unit totals, shape ``(subscriptions, periods)`` (cached per table)."""
        if not self.start.size:
            return np.zeros((self.count, periods), dtype=np.int64)
        cached = self._period_sums
        if cached is not None and cached[0] is table and cached[1] == periods:
            return cached[2]
        key = self.subscription.astype(np.int64) * periods + self.periods_of(self.start, table)
        sums = exact_sums(key, self.quantity, self.count * periods).reshape(self.count, periods)
        self._period_sums = (table, periods, sums)
        return sums

    def periods_of(self, starts: I64, table: PeriodTable) -> I16:
        """TOU period index of each instant (cached for the readings' own starts)."""
        if starts is not self.start:
            return table.lookup(starts)
        if self._periods is None or self._periods[0] is not table:
            self._periods = (table, table.lookup(starts))
        return self._periods[1]

    def rolling_windows(self, window_seconds: int) -> Windows:
        """Energy in a window ``[t, t + window)`` starting at every reading ``t``."""
        self._check_window(window_seconds)
        if self.interval_seconds == window_seconds or not self.start.size:
            return Windows(self.subscription, self.start, self.quantity)
        t0 = int(self.start.min())
        span = int(self.start.max()) - t0 + window_seconds + 1
        key = self.subscription.astype(np.int64) * span + (self.start - t0)
        sub, start, qty = self.subscription, self.start, self.quantity
        if key.size > 1 and not bool((key[1:] >= key[:-1]).all()):
            order = np.argsort(key, kind="stable")
            key, sub, start, qty = key[order], sub[order], start[order], qty[order]
        wide = int(qty.max()) * qty.size >= 2**63
        cum = np.concatenate(([0], np.cumsum(qty.astype(object) if wide else qty)))
        end = np.searchsorted(key, key + window_seconds, side="left")
        energy = narrow(cum[end] - cum[: key.size])
        if energy.dtype == object:
            raise RatingError(f"meter {self.meter!r}: window energy too large")
        return Windows(sub, start, energy)

    def _check_window(self, window_seconds: int) -> None:
        step = self.interval_seconds
        if self.start.size and (step > window_seconds or window_seconds % step):
            raise RatingError(
                f"meter {self.meter!r}: {step} s intervals cannot form "
                f"{window_seconds} s demand windows"
            )

    def windows(self, window_seconds: int) -> Windows:
        """Energy in each demand window (fixed windows aligned to the epoch; if the interval
        equals the window, each interval is a window)."""
        self._check_window(window_seconds)
        if self.interval_seconds == window_seconds or not self.start.size:
            return Windows(self.subscription, self.start, self.quantity)
        w = self.start // window_seconds
        wmin = int(w.min())
        span = int(w.max()) - wmin + 1
        key = self.subscription.astype(np.int64) * span + (w - wmin)
        qty = self.quantity
        if key.size > 1 and not bool((key[1:] >= key[:-1]).all()):
            order = np.argsort(key, kind="stable")
            key, qty = key[order], qty[order]
        first = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1))
        energy = np.add.reduceat(qty, first)
        k = key[first]
        return Windows((k // span).astype(np.int32), (k % span + wmin) * window_seconds, energy)


def _all_inside(sub: I32, start: I64, ps: I64, pe: I64) -> bool:
    """Whether every reading starts inside its subscription's period. Readings grouped by
    subscription (as billing passes them) are checked with one min and max per run instead of
    two gathers per reading."""
    if sub.size > 1 and not bool((sub[1:] >= sub[:-1]).all()):
        return bool(((start >= ps[sub]) & (start < pe[sub])).all())
    bounds = np.flatnonzero(np.diff(sub)) + 1
    firsts = np.concatenate(([0], bounds))
    owner = sub[firsts]
    return bool(
        (np.minimum.reduceat(start, firsts) >= ps[owner]).all()
        and (np.maximum.reduceat(start, firsts) < pe[owner]).all()
    )


def max_per(keys: npt.NDArray[Any], values: I64, bins: int) -> I64:
    """``max(values[keys == k])`` per bin (0 for empty bins; values are non-negative); the
    maximum of each run of equal consecutive keys first, when the keys come in runs."""
    out = np.zeros(bins, dtype=np.int64)
    if values.size:
        starts = run_starts(keys)
        if starts.size * 2 <= keys.size:
            keys, values = keys[starts], np.maximum.reduceat(values, starts)
        np.maximum.at(out, keys, values)
    return out
