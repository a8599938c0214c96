"""Credit notes (pure): the documents that credit a final invoice when late data lowers what
it should have billed. Each has its own number (``CN-YYYY-NNNNNN``, a gapless series per issuer
and year, separate from invoices), refers to the invoice it corrects, is issued by that
invoice's issuer at that invoice's tax rate, and states the credited amounts as positive.

Rounding is the invoice rule (``money``): each line rounded once, tax on the exact subtotal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from collector.billing.drafting import CorrectionLine, customer_snapshot
from collector.billing.model import Customer, Lineage
from collector.billing.money import compute_totals, round_money

CREDIT_NOTE_PREFIX = "CN"
LATE_DATA_REASON = "late meter data lowered the usage of the invoiced period"


@dataclass(frozen=True, slots=True)
class CreditedInvoice:
    """What a credit note takes over from the invoice it corrects."""

    invoice_id: int
    number: str
    period: str
    issuer: str
    currency: str
    tax_rate: Decimal


@dataclass(frozen=True, slots=True)
class CreditNoteLine:
    line_no: int
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount_unrounded: Decimal  # credited, positive
    amount: Decimal  # rounded once
    subscription_id: int | None
    lineage: Lineage


@dataclass(frozen=True, slots=True)
class CreditNoteDraft:
    customer_id: int
    corrects: CreditedInvoice
    reason: str
    subtotal: Decimal
    subtotal_unrounded: Decimal
    tax: Decimal
    total: Decimal
    customer_snapshot: dict[str, Any]
    lines: tuple[CreditNoteLine, ...]
    prefix: str = CREDIT_NOTE_PREFIX


@dataclass(frozen=True, slots=True)
class CreditNote:
    credit_note_id: int
    number: str
    customer_id: int
    corrects_invoice_id: int
    reason: str
    currency: str
    tax_rate: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    issuer: str
    issued_at: datetime
    lines: tuple[CreditNoteLine, ...] = field(default=())


def credit_note_drafts(
    corrections: Mapping[int, Sequence[CorrectionLine]],
    customers: Mapping[int, Customer],
    credited: Mapping[int, CreditedInvoice],
    *,
    reason: str = LATE_DATA_REASON,
) -> list[CreditNoteDraft]:
    """One credit note per corrected invoice whose corrections sum below zero (per meter and
    subscription; corrections that raise the amount are billed on the next invoice instead)."""
    out: list[CreditNoteDraft] = []
    for cid in sorted(corrections):
        by_invoice: dict[int, list[CorrectionLine]] = {}
        for c in corrections[cid]:
            if c.amount_unrounded < 0:
                by_invoice.setdefault(c.corrects_invoice_id, []).append(c)
        for invoice_id in sorted(by_invoice):
            inv = credited[invoice_id]
            lines = tuple(
                _line(no, c, inv.currency) for no, c in enumerate(by_invoice[invoice_id], start=1)
            )
            totals = compute_totals(
                ((ln.amount_unrounded, ln.amount) for ln in lines), inv.tax_rate, inv.currency
            )
            out.append(
                CreditNoteDraft(
                    customer_id=cid,
                    corrects=inv,
                    reason=reason,
                    subtotal=totals.subtotal,
                    subtotal_unrounded=totals.subtotal_unrounded,
                    tax=totals.tax,
                    total=totals.total,
                    customer_snapshot=customer_snapshot(customers[cid]),
                    lines=lines,
                )
            )
    return out


def _line(no: int, c: CorrectionLine, currency: str) -> CreditNoteLine:
    credited = -c.amount_unrounded
    return CreditNoteLine(
        line_no=no,
        description=f"{c.label}: credit for late data, corrects {c.corrects_invoice_number}"
        f" ({c.corrected_period})",
        quantity=Decimal(1),
        unit="correction",
        unit_price=credited,
        amount_unrounded=credited,
        amount=round_money(credited, currency),
        subscription_id=c.subscription_id,
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
