"""Pay-in-advance fees (pure): the advance invoice of one customer for one period, from the
lines of its ``pay_in_advance`` recurring fees (``rating_pass`` with ``in_advance="only"``).
Amounts are the engine's rounded line amounts (prorated by days for a subscription that
starts inside the period); tax is rounded once on the exact sum, as on every invoice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from collector.billing.money import compute_totals
from collector.rating import LineItem


@dataclass(frozen=True, slots=True)
class AdvanceLine:
    subscription_id: int
    charge_id: str
    description: str
    amount_unrounded: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class AdvanceDue:
    customer_id: int
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    tax_rate: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    issuer: str
    prefix: str
    lines: tuple[AdvanceLine, ...]


def advance_lines(subscription_id: int, label: str, items: Sequence[LineItem]) -> list[AdvanceLine]:
    return [
        AdvanceLine(
            subscription_id,
            li.charge_id,
            f"{label}: {li.description} (billed in advance)",
            li.amount_unrounded,
            li.amount,
        )
        for li in items
    ]


@dataclass(frozen=True, slots=True)
class AdvanceContext:
    customer_id: int
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    tax_rate: Decimal
    issuer: str
    prefix: str


def advance_invoice(ctx: AdvanceContext, lines: Sequence[AdvanceLine]) -> AdvanceDue | None:
    """The advance invoice, or None when there is nothing positive to bill."""
    totals = compute_totals(
        ((ln.amount_unrounded, ln.amount) for ln in lines), ctx.tax_rate, ctx.currency
    )
    if not lines or totals.subtotal <= 0:
        return None
    return AdvanceDue(
        customer_id=ctx.customer_id,
        period=ctx.period,
        period_start=ctx.period_start,
        period_end=ctx.period_end,
        currency=ctx.currency,
        tax_rate=ctx.tax_rate,
        subtotal=totals.subtotal,
        tax=totals.tax,
        total=totals.total,
        issuer=ctx.issuer,
        prefix=ctx.prefix,
        lines=tuple(lines),
    )
