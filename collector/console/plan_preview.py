"""Plan preview: what a customer would pay for a period on another plan, rated by the same
engine as its invoices (``collector.rating.engine``), from the same 15-minute usage.

Each of the customer's meters is rated as one subscription over the period (as on an invoice:
one subscription per meter), lines rounded once each, tax on the unrounded subtotal
(``collector.billing.money.compute_totals``). Pure: usage and plan are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from collector.billing.money import InvoiceTotals, compute_totals
from collector.billing.periods import BillingPeriod
from collector.errors import ValidationFailed
from collector.rating.engine import rate
from collector.rating.inputs import IntervalUsage, Subscriptions
from collector.rating.lines import LineItem
from collector.rating.plan import Plan

__all__ = ["MeterSeries", "Preview", "preview"]

INTERVAL_S = 900


@dataclass(frozen=True, slots=True)
class MeterSeries:
    """One meter's 15-minute usage in the period: bucket starts (Unix s) and quantities."""

    name: str
    unit: str
    starts: npt.NDArray[np.int64]
    quantity: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Preview:
    """The lines (per meter) and totals the customer would have been invoiced."""

    meters: tuple[str, ...]
    lines: tuple[tuple[str, LineItem], ...]  # (meter name, line)
    totals: InvoiceTotals
    currency: str


def preview(
    plan: Plan, period: BillingPeriod, meters: Sequence[MeterSeries], tax_rate: Decimal
) -> Preview:
    """Rate ``meters`` over ``period`` on ``plan``; RatingError if a unit does not fit."""
    if not meters:
        raise ValidationFailed("the customer has no meters in this period")
    start, end = int(period.start.timestamp()), int(period.end.timestamp())
    lines: list[tuple[str, LineItem]] = []
    for unit in sorted({m.unit for m in meters}):
        group = [m for m in meters if m.unit == unit]
        n = len(group)
        subs = Subscriptions(
            period_start=np.full(n, start, dtype=np.int64),
            period_end=np.full(n, end, dtype=np.int64),
        )
        usage = IntervalUsage(
            unit=unit,
            interval_seconds=INTERVAL_S,
            subscription=np.concatenate(
                [np.full(m.starts.shape[0], i, dtype=np.int32) for i, m in enumerate(group)]
            ),
            start=np.concatenate([m.starts for m in group]).astype(np.int64),
            quantity=np.maximum(np.concatenate([m.quantity for m in group]), 0.0),
        )
        rated = rate(plan, subs, [usage])
        for m, items in zip(group, rated.by_subscription(), strict=True):
            lines.extend((m.name, item) for item in items)
    totals = compute_totals(
        ((ln.amount_unrounded, ln.amount) for _, ln in lines), tax_rate, plan.currency
    )
    return Preview(tuple(m.name for m in meters), tuple(lines), totals, plan.currency)
