"""Rated segment lines and corrections into a draft invoice (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from collector.billing.model import (
    Customer,
    DemandPeak,
    DraftInvoice,
    InvoiceLine,
    Lineage,
    LineKind,
)
from collector.billing.money import compute_totals, round_money
from collector.billing.periods import BillingPeriod
from collector.billing.segments import Segment, SegmentUsage
from collector.rating import LineItem
from collector.rating import LineKind as RatedKind
from collector.rating.intmath import run_sums

_KIND = {
    RatedKind.DEMAND: LineKind.DEMAND,
    RatedKind.RATCHET: LineKind.DEMAND,
    RatedKind.RECURRING: LineKind.FIXED,
    RatedKind.MINIMUM: LineKind.FIXED,
}
_Q6 = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class SegmentFacts:
    """What the lineage of a segment's lines records."""

    quantity: Decimal
    estimated: Decimal
    readings: int
    intervals: int


def segment_facts(usage: SegmentUsage, count: int) -> list[SegmentFacts]:
    """Totals per segment, vectorised (sums per run of rows of one segment)."""
    q = run_sums(usage.segment, usage.quantity, count)
    e = run_sums(usage.segment, usage.estimated, count)
    r = run_sums(usage.segment, usage.readings, count)
    n = np.bincount(usage.segment, minlength=count)
    return [
        SegmentFacts(
            quantity=Decimal(repr(float(q[k]))).quantize(_Q6),
            estimated=Decimal(repr(float(e[k]))).quantize(_Q6),
            readings=int(r[k]),
            intervals=int(n[k]),
        )
        for k in range(count)
    ]


@dataclass(frozen=True, slots=True)
class CorrectionLine:
    """An adjustment owed for late data on an earlier, final invoice."""

    subscription_id: int
    series_id: int
    corrects_invoice_id: int
    corrects_invoice_number: str
    corrected_period: str
    amount_unrounded: Decimal
    plan_version_ids: tuple[int, ...]
    label: str


def customer_snapshot(customer: Customer) -> dict[str, object]:
    s = customer.spec
    return {
        "customer_id": customer.customer_id,
        "name": s.name,
        "address": s.address.to_json(),
        "language": s.language,
        "time_zone": s.time_zone,
        "currency": s.currency,
        "tax": s.tax.to_json(),
    }


def _segment_lineage(seg: Segment, facts: SegmentFacts) -> Lineage:
    return Lineage(
        series_ids=(seg.series_id,),
        subscription_ids=(seg.subscription_id,),
        interval_from=seg.start,
        interval_to=seg.end,
        interval_count=facts.intervals,
        reading_count=facts.readings,
        estimated_quantity=facts.estimated,
        plan_version_id=seg.plan_version_id,
    )


def _usage_line(
    no: int, facts: SegmentFacts, item: LineItem, label: str, lineage: Lineage
) -> InvoiceLine:
    kind = _KIND.get(item.kind, LineKind.USAGE)
    share = Decimal(0)
    if kind is LineKind.USAGE and facts.quantity > 0:
        share = min(Decimal(1), (facts.estimated / facts.quantity).quantize(_Q6))
    return InvoiceLine(
        line_no=no,
        kind=kind,
        description=f"{label}: {item.description}",
        quantity=item.quantity,
        unit=item.unit,
        unit_price=item.unit_price,
        amount_unrounded=item.amount_unrounded,
        amount=item.amount,
        tier=None if item.tier is None else str(item.tier + 1),
        tou_period=item.period,
        estimated_share=share,
        lineage=lineage,
    )


def _correction_line(no: int, c: CorrectionLine, currency: str) -> InvoiceLine:
    credit = c.amount_unrounded < 0
    verb = "credit" if credit else "adjustment"
    return InvoiceLine(
        line_no=no,
        kind=LineKind.CREDIT if credit else LineKind.ADJUSTMENT,
        description=f"{c.label}: {verb} for late data, corrects {c.corrects_invoice_number}"
        f" ({c.corrected_period})",
        quantity=Decimal(1),
        unit="correction",
        unit_price=c.amount_unrounded,
        amount_unrounded=c.amount_unrounded,
        amount=round_money(c.amount_unrounded, currency),
        lineage=Lineage(
            series_ids=(c.series_id,),
            subscription_ids=(c.subscription_id,),
            interval_from=None,
            interval_to=None,
            interval_count=0,
            reading_count=0,
            estimated_quantity=Decimal(0),
            plan_version_id=c.plan_version_ids[0] if len(c.plan_version_ids) == 1 else None,
            corrects_invoice_id=c.corrects_invoice_id,
            corrects_invoice_number=c.corrects_invoice_number,
            corrected_period=c.corrected_period,
        ),
    )


def draft_invoice(
    customer: Customer,
    period: BillingPeriod,
    segments: Sequence[tuple[Segment, SegmentFacts, Sequence[LineItem]]],
    corrections: Sequence[CorrectionLine],
    labels: Mapping[int, str],
    *,
    peaks: Sequence[DemandPeak] = (),
) -> DraftInvoice | None:
    """The draft of ``customer`` for ``period``; None when there is nothing to bill."""
    lines: list[InvoiceLine] = []
    for seg, facts, items in segments:
        lineage = _segment_lineage(seg, facts)  # shared by the segment's lines (immutable)
        for item in items:
            lines.append(_usage_line(len(lines) + 1, facts, item, labels[seg.series_id], lineage))
    for c in corrections:
        # more to bill: an adjustment line here; less: a credit note at finalization
        # (``credit_notes``), never a negative line on this invoice
        if c.amount_unrounded > 0:
            lines.append(_correction_line(len(lines) + 1, c, customer.spec.currency))
    if not lines:
        return None
    s = customer.spec
    totals = compute_totals(
        ((ln.amount_unrounded, ln.amount) for ln in lines), s.tax_rate, s.currency
    )
    return DraftInvoice(
        customer_id=customer.customer_id,
        period=str(period.key),
        period_start=period.start,
        period_end=period.end,
        currency=s.currency,
        tax_rate=s.tax_rate,
        subtotal=totals.subtotal,
        subtotal_unrounded=totals.subtotal_unrounded,
        tax=totals.tax,
        total=totals.total,
        issuer=s.issuer,
        prefix=s.invoice_prefix,
        customer_snapshot=customer_snapshot(customer),
        lines=tuple(lines),
        peaks=tuple(peaks),
    )
