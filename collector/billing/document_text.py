"""The words and figures of an invoice or credit note, laid out as sections of text for the
customer's language and locale (pure). HTML and PDF both print exactly these strings, so the
golden files of this layout pin down what a customer reads."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from collector.billing import locale_format as fmt
from collector.billing.labels import labels_for
from collector.billing.legal import DocumentKind, LegalDocument
from collector.billing.legal_labels import legal_labels_for
from collector.billing.model import Address


@dataclass(frozen=True, slots=True)
class DocumentText:
    title: str
    seller_heading: str
    seller: tuple[str, ...]
    buyer_heading: str
    buyer: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]  # (label, value): number, dates, period, references
    line_heads: tuple[str, str, str, str, str]  # description, quantity, unit price, VAT, net
    lines: tuple[tuple[str, str, str, str, str], ...]
    vat_heads: tuple[str, str, str, str]  # category, rate, taxable, VAT
    vat: tuple[tuple[str, str, str, str], ...]
    totals: tuple[tuple[str, str], ...]
    payment: tuple[str, ...]
    notes: tuple[str, ...]


def _address(a: Address) -> list[str]:
    return a.lines()


def document_text(doc: LegalDocument) -> DocumentText:
    t = labels_for(doc.language)
    w = legal_labels_for(doc.language)
    loc = doc.locale
    credit = doc.kind is DocumentKind.CREDIT_NOTE

    def money(v: Decimal) -> str:
        return fmt.money(v, doc.currency, loc)

    kind_word = w["credit_note"] if credit else t["invoice"]
    title = f"{kind_word} {doc.number or t['draft'] + ' ' + str(doc.document_id)}"
    seller: list[str] = []
    if doc.seller is None:
        seller.append(f"({w['not_configured']})")
    else:
        s = doc.seller
        seller += [s.name, *_address(s.address), f"{w['vat_id']}: {s.vat_id}"]
        if s.company_id:
            seller.append(f"{w['company_id']}: {s.company_id}")
        seller += [x for x in (s.email, s.phone) if x]
    b = doc.buyer
    buyer = [b.name, *_address(b.address)]
    if b.tax.vat_id:
        buyer.append(f"{w['vat_id']}: {b.tax.vat_id}")
    facts: list[tuple[str, str]] = [
        (w["credit_number"] if credit else w["number"], doc.number or t["draft"]),
        (
            w["credit_issue_date"] if credit else w["issue_date"],
            fmt.day(doc.issue_date, loc) if doc.issue_date else w["not_issued"],
        ),
    ]
    if doc.due_date is not None:
        facts.append((w["due_date"], fmt.day(doc.due_date, loc)))
    facts.append(
        (
            w["supply_period"],
            f"{fmt.day(doc.supply_first, loc)} – {fmt.day(doc.supply_last, loc)}",
        )
    )
    if doc.corrects is not None:
        when = fmt.day(doc.corrects.issue_date, loc) if doc.corrects.issue_date else "?"
        facts.append(("", w["corrects"].format(number=doc.corrects.number, date=when)))
    if b.tax.buyer_reference:
        facts.append((w["buyer_reference"], b.tax.buyer_reference))
    lines = tuple(
        (
            ln.label + (" *" if ln.estimated else ""),
            fmt.quantity(ln.quantity, ln.unit, loc),
            fmt.price(ln.unit_price, doc.currency, loc),
            fmt.percent(ln.rate, loc),
            money(ln.net_amount),
        )
        for ln in doc.lines
    )
    vat = tuple(
        (
            f"{g.category.value} – {w['cat_' + g.category.value]}",
            fmt.percent(g.rate, loc),
            money(g.taxable),
            money(g.tax),
        )
        for g in doc.vat
    )
    totals = (
        (w["total_net"], money(doc.net_total)),
        (w["vat"], money(doc.tax_total)),
        (w["refund"] if credit else w["total_due"], money(doc.total)),
    )
    payment: list[str] = []
    if doc.seller is not None and not credit:
        s = doc.seller
        payment.append(w["payment_terms"].format(days=s.payment_terms_days))
        payment.append(
            w["payment_means"].format(
                iban=s.iban, bic=f" (BIC {s.bic})" if s.bic else "", reference=doc.payment_reference
            )
        )
        if s.payment_note:
            payment.append(s.payment_note)
    notes = list(doc.notes)
    for g in doc.vat:
        if g.exemption_reason and g.category.value == "E":
            notes.append(g.exemption_reason)
    if doc.estimated:
        notes.append(t["estimate_note"])
    return DocumentText(
        title=title,
        seller_heading=w["seller"],
        seller=tuple(seller),
        buyer_heading=w["buyer"],
        buyer=tuple(buyer),
        facts=tuple(facts),
        line_heads=(t["description"], t["quantity"], t["unit_price"], w["vat"], w["net_amount"]),
        lines=lines,
        vat_heads=(w["vat_category"], "%", w["taxable"], w["vat"]),
        vat=vat,
        totals=totals,
        payment=tuple(payment),
        notes=tuple(notes),
    )


def as_plain_text(d: DocumentText) -> str:
    """Every string of the document, one per line (for golden files and search)."""
    out = [d.title, "", d.seller_heading, *d.seller, "", d.buyer_heading, *d.buyer, ""]
    out += [f"{k}: {v}" if k else v for k, v in d.facts]
    out += ["", " | ".join(d.line_heads)]
    out += [" | ".join(row) for row in d.lines]
    out += ["", " | ".join(d.vat_heads)]
    out += [" | ".join(row) for row in d.vat]
    out += [""] + [f"{k}: {v}" for k, v in d.totals]
    if d.payment:
        out += ["", *d.payment]
    if d.notes:
        out += ["", *d.notes]
    return "\n".join(out) + "\n"
