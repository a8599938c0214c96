"""Demand ratchets: which previous months a period looks back on, and the previous peaks of
each segment as the rating engine wants them (pure, no I/O).

A ratchet (``ratchet: {percent: 80, months: 11}`` on a demand charge) bills at least ``percent``%
of the highest actual peak of the previous ``months`` periods. History is kept per
(customer, meter, demand charge id): a plan change keeps the ratchet (same installation, same
charge id), a move to another customer starts without history. Only FINAL invoices count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from collector.billing.periods import PeriodKey
from collector.billing.segments import Segment
from collector.rating import Demand, Plan

F64 = npt.NDArray[np.float64]

# (customer_id, series_id, charge_id) -> {period "YYYY-MM": highest actual peak that month}
PeakHistory = Mapping[tuple[int, int, str], Mapping[str, Decimal]]


def ratchet_months(plans: Iterable[Plan]) -> int:
    """The longest ratchet look-back (months) of any demand charge of ``plans``; 0 if none."""
    return max(
        (
            ch.ratchet.months
            for plan in plans
            for ch in plan.charges
            if isinstance(ch, Demand) and ch.ratchet is not None
        ),
        default=0,
    )


def previous_periods(key: PeriodKey, months: int) -> list[str]:
    """The ``months`` periods before ``key``, oldest first."""
    out: list[str] = []
    k = key
    for _ in range(months):
        k = k.previous()
        out.append(str(k))
    return out[::-1]


def previous_peaks(
    plan: Plan,
    segments: Sequence[Segment],
    keys: Mapping[int, PeriodKey],
    history: PeakHistory,
) -> dict[str, F64]:
    """``Subscriptions.previous_peaks`` for ``segments`` (all rated on ``plan``): per ratcheted
    demand charge an ``(n, months)`` array of the previous months' peaks, most recent last,
    NaN where no final invoice recorded one. ``keys[segment.index]`` is the period the segment
    is billed in."""
    out: dict[str, F64] = {}
    for ch in plan.charges:
        if not isinstance(ch, Demand) or ch.ratchet is None:
            continue
        months = ch.ratchet.months
        arr = np.full((len(segments), months), np.nan, dtype=np.float64)
        for row, seg in enumerate(segments):
            past = history.get((seg.customer_id, seg.series_id, ch.id))
            if not past:
                continue
            for col, period in enumerate(previous_periods(keys[seg.index], months)):
                peak = past.get(period)
                if peak is not None:
                    arr[row, col] = float(peak)
        out[ch.id] = arr
    return out
