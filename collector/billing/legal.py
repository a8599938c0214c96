"""The invoice as a legal document (pure): everything EU VAT directive 2006/112/EC art. 226
and EN 16931 require, gathered from the stored invoice, its customer and issuer snapshots and
the names of its meters. Renderers (HTML, PDF, UBL, CII) all start from a ``LegalDocument``.

Where each field comes from is tabled in docs/billing.md ("Invoice fields").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from collector.billing.credit_notes import LATE_DATA_REASON, CreditNote
from collector.billing.legal_labels import legal_labels_for
from collector.billing.locale_format import babel_locale
from collector.billing.model import Address, Invoice, InvoiceLine, LineKind
from collector.billing.parties import VATEX, BuyerTax, Issuer, TaxCategory
from collector.billing.periods import zone
from collector.errors import ValidationFailed

MeterNames = Mapping[int, tuple[str, str, str, str]]  # series id → device, meter, metric, unit
_ID_RE = re.compile(r"^[a-z0-9_.-]+$")


class DocumentKind(StrEnum):
    """UNTDID 1001 document type codes."""

    INVOICE = "380"
    CREDIT_NOTE = "381"


@dataclass(frozen=True, slots=True)
class Buyer:
    customer_id: int
    name: str
    address: Address
    tax: BuyerTax


@dataclass(frozen=True, slots=True)
class LegalLine:
    line_no: int
    label: str  # in words: charge, TOU period, tier, meter
    quantity: Decimal
    unit: str
    unit_price: Decimal  # net price per unit (for a correction: its amount, quantity 1)
    net_amount: Decimal  # rounded once (``money``)
    estimated: bool
    kind: LineKind
    category: TaxCategory
    rate: Decimal  # 0.21 = 21 %


@dataclass(frozen=True, slots=True)
class VatGroup:
    """One line of the VAT breakdown: a (category, rate) pair and its amounts."""

    category: TaxCategory
    rate: Decimal
    taxable: Decimal
    tax: Decimal
    exemption_code: str = ""
    exemption_reason: str = ""


@dataclass(frozen=True, slots=True)
class Reference:
    """The invoice a credit note corrects (number and issue date)."""

    number: str
    issue_date: date | None


@dataclass(frozen=True, slots=True)
class LegalDocument:
    kind: DocumentKind
    document_id: int
    number: str | None  # None while a draft
    period: str
    issue_date: date | None
    due_date: date | None
    supply_first: date  # first day of supply, in the customer's zone
    supply_last: date  # last day of supply (inclusive)
    currency: str
    language: str
    locale: str
    seller: Issuer | None
    buyer: Buyer
    lines: tuple[LegalLine, ...]
    vat: tuple[VatGroup, ...]
    net_total: Decimal
    tax_total: Decimal
    total: Decimal
    payment_reference: str
    notes: tuple[str, ...] = ()
    corrects: Reference | None = None

    @property
    def estimated(self) -> bool:
        return any(ln.estimated for ln in self.lines)


def _address(doc: Mapping[str, Any]) -> Address:
    return Address(
        line1=str(doc.get("line1") or "-"),
        line2=str(doc.get("line2", "")),
        postal_code=str(doc.get("postal_code", "")),
        city=str(doc.get("city") or "-"),
        country=str(doc.get("country") or "ZZ"),
    )


def buyer_from_snapshot(customer_id: int, snapshot: Mapping[str, Any]) -> Buyer:
    return Buyer(
        customer_id=customer_id,
        name=str(snapshot.get("name", "")),
        address=_address(snapshot.get("address", {})),
        tax=BuyerTax.from_json(snapshot.get("tax")),
    )


def local_date(instant: datetime, time_zone: str) -> date:
    return instant.astimezone(zone(time_zone)).date()


def charge_words(ln: InvoiceLine, words: Mapping[str, str]) -> str:
    """The charge of a rated line in words: the plan's description when it has one, else the
    kind of charge (consumption, peak demand, standing charge) in the customer's language;
    then the TOU period and the tier."""
    text = ln.description.split(": ", 1)[-1]
    if ln.unit and text.endswith(f" ({ln.unit})"):
        text = text[: -len(ln.unit) - 3]
    first = text.split(" · ", 1)[0]
    if _ID_RE.match(first):
        first = words[
            {LineKind.DEMAND: "demand", LineKind.FIXED: "standing"}.get(ln.kind, "consumption")
        ]
    parts = [first]
    if ln.tou_period:
        parts.append(ln.tou_period)
    if ln.tier:
        parts.append(words["tier_n"].format(n=ln.tier))
    return ", ".join(parts)


def line_label(ln: InvoiceLine, meters: MeterNames, words: Mapping[str, str]) -> str:
    """A line named in words by its charge (or the invoice it corrects) and its meter."""
    lin = ln.lineage
    if ln.kind in (LineKind.ADJUSTMENT, LineKind.CREDIT):
        head = words["correction"].format(
            number=lin.corrects_invoice_number or "?", period=lin.corrected_period or "?"
        )
    else:
        head = charge_words(ln, words)
    meter = meters.get(lin.series_ids[0]) if len(lin.series_ids) == 1 else None
    if meter is None:
        return head
    return f"{head} ({words['meter'].format(device=meter[0], meter=meter[1])})"


def _quantity_price(ln: InvoiceLine) -> tuple[Decimal, Decimal]:
    """Quantity and net price whose product is the line's exact amount (Peppol R120): the
    rated ones; 1 x amount for a line without quantity; amount / quantity without a price."""
    if ln.quantity == 0:
        return Decimal(1), ln.amount_unrounded
    if ln.unit_price is None:
        return ln.quantity, (ln.amount_unrounded / ln.quantity).quantize(Decimal("1e-10"))
    return ln.quantity, ln.unit_price


def vat_groups(
    lines: tuple[LegalLine, ...], tax_total: Decimal, tax: BuyerTax
) -> tuple[VatGroup, ...]:
    """The VAT breakdown: one group per (category, rate). Tally bills one category and rate per
    invoice (the customer's), so there is one group whose tax is the invoice's tax (computed on
    the exact subtotal and rounded once, see ``money``)."""
    groups: dict[tuple[TaxCategory, Decimal], Decimal] = {}
    for ln in lines:
        k = (ln.category, ln.rate)
        groups[k] = groups.get(k, Decimal(0)) + ln.net_amount
    if len(groups) > 1:  # not produced today; kept honest should it ever be
        raise ValidationFailed("one VAT category and rate per invoice is supported")
    out = []
    for (category, rate), taxable in groups.items():
        reason = tax.exemption_reason
        code = VATEX.get(category, "")
        if category is TaxCategory.EXEMPT and not reason:
            reason = "exempt"
        out.append(VatGroup(category, rate, taxable, tax_total, code, reason))
    return tuple(out)


def invoice_document(
    inv: Invoice,
    customer: Mapping[str, Any],
    issuer: Issuer | None,
    meters: MeterNames,
) -> LegalDocument:
    """The legal document of a stored invoice (draft or final)."""
    tz = str(customer.get("time_zone", "UTC"))
    language = str(customer.get("language") or "en")
    buyer = buyer_from_snapshot(inv.customer_id, customer)
    words = legal_labels_for(language)
    category = buyer.tax.category
    lines = tuple(
        LegalLine(
            line_no=ln.line_no,
            label=line_label(ln, meters, words),
            quantity=_quantity_price(ln)[0],
            unit=ln.unit,
            unit_price=_quantity_price(ln)[1],
            net_amount=ln.amount,
            estimated=ln.is_estimated,
            kind=ln.kind,
            category=category,
            rate=inv.tax_rate,
        )
        for ln in inv.lines
    )
    issue = None if inv.finalized_at is None else local_date(inv.finalized_at, tz)
    due = None
    if issue is not None and issuer is not None:
        due = issue + timedelta(days=issuer.payment_terms_days)
    note_key = f"note_{category.value}"
    notes = (words[note_key],) if note_key in words else ()
    return LegalDocument(
        kind=DocumentKind.INVOICE,
        document_id=inv.invoice_id,
        number=inv.number,
        period=inv.period,
        issue_date=issue,
        due_date=due,
        supply_first=local_date(inv.period_start, tz),
        supply_last=local_date(inv.period_end, tz) - timedelta(days=1),
        currency=inv.currency,
        language=language,
        locale=babel_locale(language, buyer.address.country),
        seller=issuer,
        buyer=buyer,
        lines=lines,
        vat=vat_groups(lines, inv.tax, buyer.tax),
        net_total=inv.subtotal,
        tax_total=inv.tax,
        total=inv.total,
        payment_reference=inv.number or f"DRAFT-{inv.invoice_id}",
        notes=notes,
    )


def credit_note_document(
    cn: CreditNote,
    customer: Mapping[str, Any],
    issuer: Issuer | None,
    meters: MeterNames,
    *,
    corrected: Invoice,
) -> LegalDocument:
    """The legal document of a credit note: positive amounts credited on the final invoice
    ``corrected`` (its number and issue date are referenced, its period is the supply period)."""
    tz = str(customer.get("time_zone", "UTC"))
    corrects = Reference(
        corrected.number or "?",
        None if corrected.finalized_at is None else local_date(corrected.finalized_at, tz),
    )
    language = str(customer.get("language") or "en")
    buyer = buyer_from_snapshot(cn.customer_id, customer)
    words = legal_labels_for(language)
    category = buyer.tax.category
    lines = []
    for ln in cn.lines:
        lin = ln.lineage
        label = words["correction"].format(
            number=lin.corrects_invoice_number or corrects.number,
            period=lin.corrected_period or "?",
        )
        meter = meters.get(lin.series_ids[0]) if len(lin.series_ids) == 1 else None
        if meter is not None:
            label += f" ({words['meter'].format(device=meter[0], meter=meter[1])})"
        lines.append(
            LegalLine(
                line_no=ln.line_no,
                label=label,
                quantity=ln.quantity,
                unit=ln.unit,
                unit_price=ln.unit_price,
                net_amount=ln.amount,
                estimated=False,
                kind=LineKind.CREDIT,
                category=category,
                rate=cn.tax_rate,
            )
        )
    note_key = f"note_{category.value}"
    return LegalDocument(
        kind=DocumentKind.CREDIT_NOTE,
        document_id=cn.credit_note_id,
        number=cn.number,
        period=corrected.period,
        issue_date=local_date(cn.issued_at, tz),
        due_date=None,
        supply_first=local_date(corrected.period_start, tz),
        supply_last=local_date(corrected.period_end, tz) - timedelta(days=1),
        currency=cn.currency,
        language=language,
        locale=babel_locale(language, buyer.address.country),
        seller=issuer,
        buyer=buyer,
        lines=tuple(lines),
        vat=vat_groups(tuple(lines), cn.tax, buyer.tax),
        net_total=cn.subtotal,
        tax_total=cn.tax,
        total=cn.total,
        payment_reference=cn.number,
        notes=(
            words["reason_late_data"] if cn.reason == LATE_DATA_REASON else cn.reason,
            *((words[note_key],) if note_key in words else ()),
        ),
        corrects=corrects,
    )
