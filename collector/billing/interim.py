"""Progressive billing's interim invoices (pure): when one is due for a subscription and what
it bills.

An interim invoice bills the usage amount of the open period not billed yet, when that amount
crosses one of the plan's thresholds (``collector.rating.progressive``). It records the highest
threshold crossed; a later check issues another only when a higher threshold is crossed.
Amounts are exact Decimals: the usage amount is the sum of the rounded usage lines, so the
interim amount and the final invoice's deduction are in whole minor units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from collector.billing.money import compute_totals
from collector.billing.segments import Segment
from collector.rating import LineItem, Plan
from collector.rating import LineKind as RatedKind
from collector.rating.progressive import interim_due, progressive_charge

# Lines that are not usage: fees, true-ups, discounts and the deduction itself.
NOT_USAGE = frozenset(
    {RatedKind.RECURRING, RatedKind.MINIMUM, RatedKind.DISCOUNT, RatedKind.BILLED_IN_ADVANCE}
)


def usage_amount(lines: Iterable[LineItem]) -> Decimal:
    """The rounded usage amount of a subscription's lines so far."""
    return sum((li.amount for li in lines if li.kind not in NOT_USAGE), Decimal(0))


@dataclass(frozen=True, slots=True)
class InterimDue:
    """An interim invoice to issue for one subscription of one period."""

    customer_id: int
    subscription_id: int
    period: str
    period_start: datetime
    period_end: datetime
    threshold: Decimal
    usage_amount: Decimal
    billed_before: Decimal
    amount: Decimal
    currency: str
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    issuer: str
    prefix: str
    description: str


@dataclass(frozen=True, slots=True)
class InterimContext:
    """Who and what an interim check is about."""

    customer_id: int
    subscription_id: int
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    tax_rate: Decimal
    issuer: str
    prefix: str
    label: str


def interim_for(
    ctx: InterimContext, plan: Plan, usage: Decimal, billed: Decimal
) -> InterimDue | None:
    """The interim invoice due for ``usage`` when interim invoices billed ``billed``, or None."""
    due = interim_due(plan, usage, billed)
    ch = progressive_charge(plan)
    if due is None or ch is None or due <= 0:
        return None
    threshold = max(t for t in ch.thresholds if billed < t <= usage)
    totals = compute_totals([(due, due)], ctx.tax_rate, ctx.currency)
    return InterimDue(
        customer_id=ctx.customer_id,
        subscription_id=ctx.subscription_id,
        period=ctx.period,
        period_start=ctx.period_start,
        period_end=ctx.period_end,
        threshold=threshold,
        usage_amount=usage,
        billed_before=billed,
        amount=due,
        currency=ctx.currency,
        tax_rate=ctx.tax_rate,
        tax=totals.tax,
        total=totals.total,
        issuer=ctx.issuer,
        prefix=ctx.prefix,
        description=f"{ctx.label}: interim invoice, usage {usage} {ctx.currency} crossed"
        f" threshold {threshold} (billed before {billed})",
    )


def advance_by_segment(
    segments: Sequence[Segment],
    period_of: Callable[[Segment], str],
    billed: Mapping[tuple[int, str], Decimal],
) -> dict[int, Decimal]:
    """Segment index -> amount billed in advance, deducted on the first segment of each
    (subscription, period) so it is deducted exactly once."""
    out: dict[int, Decimal] = {}
    seen: set[tuple[int, str]] = set()
    for seg in segments:
        k = (seg.subscription_id, period_of(seg))
        if k in billed and k not in seen:
            seen.add(k)
            out[seg.index] = billed[k]
    return out
