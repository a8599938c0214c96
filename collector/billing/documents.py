"""Invoice documents: JSON, HTML, PDF (fpdf2) and CSV lines for accounting, and the lineage
explanation of a line ("why am I billed this"). Renderers are pure; ``render``/``explain`` load.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import psycopg
from fpdf import FPDF

from collector.billing.document_text import document_text
from collector.billing.einvoice_cii import cii_xml
from collector.billing.einvoice_facturx import EInvoiceError, facturx_pdf
from collector.billing.einvoice_ubl import ubl_xml
from collector.billing.labels import labels_for
from collector.billing.legal import LegalDocument, credit_note_document, invoice_document
from collector.billing.model import Invoice, InvoiceLine
from collector.billing.money import minor_units
from collector.billing.parties import Issuer
from collector.billing.pdf_fonts import PdfFonts, find_fonts
from collector.storage import billing_credit_note_store as credit_notes
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_issuer_store as issuers
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store
from collector.storage import wallets_auto_apply

Conn = psycopg.Connection[Any]
ESTIMATE_NOTE = labels_for("en")["estimate_note"]


def _num(v: Any) -> str | None:
    return None if v is None else str(v)


def line_json(ln: InvoiceLine) -> dict[str, Any]:
    return {
        "line_id": ln.line_id,
        "line_no": ln.line_no,
        "kind": ln.kind.value,
        "description": ln.description,
        "quantity": str(ln.quantity),
        "unit": ln.unit,
        "unit_price": _num(ln.unit_price),
        "amount_unrounded": str(ln.amount_unrounded),
        "amount": str(ln.amount),
        "tier": ln.tier,
        "tou_period": ln.tou_period,
        "estimated_share": str(ln.estimated_share),
        "estimated": ln.is_estimated,
        "lineage": ln.lineage.to_json(),
    }


def invoice_json(inv: Invoice, customer: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "invoice_id": inv.invoice_id,
        "number": inv.number,
        "status": inv.status.value,
        "issuer": inv.issuer,
        "customer_id": inv.customer_id,
        "customer": dict(customer),
        "period": inv.period,
        "period_start": inv.period_start.isoformat(),
        "period_end": inv.period_end.isoformat(),
        "currency": inv.currency,
        "tax_rate": str(inv.tax_rate),
        "subtotal": str(inv.subtotal),
        "tax": str(inv.tax),
        "total": str(inv.total),
        "drafted_at": inv.drafted_at.isoformat(),
        "finalized_at": inv.finalized_at.isoformat() if inv.finalized_at else None,
        "forced_reason": inv.forced_reason,
        "lines": [line_json(ln) for ln in inv.lines],
    }


def invoice_html(doc: LegalDocument) -> str:
    """The invoice or credit note as an HTML page in the customer's language and locale."""
    e = html.escape
    d = document_text(doc)

    def block(heading: str, rows: tuple[str, ...]) -> str:
        body = "<br>".join(e(x) for x in rows)
        return f"<div class=party><h2>{e(heading)}</h2><p>{body}</p></div>"

    def table(cls: str, heads: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in heads)
        body = "".join(
            "<tr>"
            + "".join(f"<td{' class=n' if i else ''}>{e(c)}</td>" for i, c in enumerate(row))
            + "</tr>"
            for row in rows
        )
        return f"<table class={cls}><tr>{head}</tr>{body}</table>"

    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in d.facts)
    totals = "".join(f"<tr><th>{e(k)}</th><td class=n>{e(v)}</td></tr>" for k, v in d.totals)
    payment = "".join(f"<p>{e(x)}</p>" for x in d.payment)
    notes = "".join(f"<p class=note>{e(x)}</p>" for x in d.notes)
    return (
        f"<!doctype html><html lang={e(doc.language)}><head><meta charset=utf-8>"
        f"<title>{e(d.title)}</title><style>body{{font-family:sans-serif;max-width:60em}}"
        ".party{display:inline-block;vertical-align:top;width:48%}td.n{text-align:right}"
        "table{border-collapse:collapse;margin:1em 0}td,th{padding:2px 8px;text-align:left}"
        f"</style></head><body><h1>{e(d.title)}</h1>"
        f"{block(d.seller_heading, d.seller)}{block(d.buyer_heading, d.buyer)}"
        f"<table class=facts>{facts}</table>"
        f"{table('lines', d.line_heads, d.lines)}{table('vat', d.vat_heads, d.vat)}"
        f"<table class=totals>{totals}</table>{payment}{notes}</body></html>"
    )


def invoice_pdf(doc: LegalDocument, fonts: PdfFonts | None = None) -> bytes:
    """The invoice or credit note as a PDF (A4); fonts are embedded when ``fonts`` are given
    (needed for PDF/A-3, see ``einvoice_facturx``)."""
    d = document_text(doc)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(d.title)
    pdf.set_lang(doc.language)
    family, clean = _fonts(pdf, fonts)
    pdf.add_page()
    pdf.set_font(family, "B", 16)
    pdf.cell(0, 10, clean(d.title), new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + 2
    for x, heading, rows in ((10, d.seller_heading, d.seller), (110, d.buyer_heading, d.buyer)):
        pdf.set_xy(x, top)
        pdf.set_font(family, "B", 9)
        pdf.cell(90, 5, clean(heading), new_x="LEFT", new_y="NEXT")
        pdf.set_font(family, "", 9)
        for row in rows:
            pdf.cell(90, 4.5, clean(row), new_x="LEFT", new_y="NEXT")
    pdf.set_xy(10, top + 5 + 4.5 * max(len(d.seller), len(d.buyer)) + 4)
    pdf.set_font(family, "", 9)
    for k, v in d.facts:
        pdf.cell(45, 5, clean(k))
        pdf.cell(0, 5, clean(v), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    _pdf_table(pdf, family, clean, widths=(78, 30, 34, 14, 34), heads=d.line_heads, rows=d.lines)
    pdf.ln(3)
    _pdf_table(pdf, family, clean, widths=(80, 20, 45, 45), heads=d.vat_heads, rows=d.vat)
    pdf.ln(3)
    for n, (k, v) in enumerate(d.totals):
        last = n == len(d.totals) - 1
        pdf.set_font(family, "B" if last else "", 11 if last else 10)
        pdf.cell(150, 6, clean(k), align="R")
        pdf.cell(40, 6, clean(v), align="R", new_x="LMARGIN", new_y="NEXT")
    for size, texts in ((9, d.payment), (8, d.notes)):
        pdf.set_font(family, "", size)
        if texts:
            pdf.ln(3)
        for para in texts:
            pdf.multi_cell(0, 4.5, clean(para), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _pdf_table(
    pdf: FPDF,
    family: str,
    clean: Callable[[str], str],
    *,
    widths: tuple[float, ...],
    heads: tuple[str, ...],
    rows: tuple[tuple[str, ...], ...],
) -> None:
    """A table whose first column wraps and whose other columns are right-aligned."""
    pdf.set_font(family, "B", 8)
    for i, (w, h) in enumerate(zip(widths, heads, strict=True)):
        pdf.cell(w, 6, clean(h), border="B", align="R" if i else "L")
    pdf.ln()
    pdf.set_font(family, "", 8)
    for row in rows:
        y = pdf.get_y()
        pdf.multi_cell(widths[0], 4.5, clean(row[0]), new_x="LMARGIN", new_y="NEXT")
        bottom = pdf.get_y()
        pdf.set_xy(10 + widths[0], y)
        for w, text in zip(widths[1:], row[1:], strict=True):
            pdf.cell(w, 4.5, clean(text), align="R")
        pdf.set_xy(10, max(bottom, y + 4.5))


def _fonts(pdf: FPDF, fonts: PdfFonts | None) -> tuple[str, Callable[[str], str]]:
    """The font family to use and how text must be cleaned for it: an embedded Unicode font
    prints everything; the PDF core fonts only know Latin-1."""
    if fonts is not None:
        pdf.add_font("Body", "", str(fonts.regular))
        pdf.add_font("Body", "B", str(fonts.bold))
        return "Body", _same
    return "Helvetica", _latin1


def _same(text: str) -> str:
    return text


_NOT_LATIN1 = str.maketrans({"€": "EUR", "–": "-", "\u202f": " ", "\u2009": " ", "’": "'"})


def _latin1(text: str) -> str:
    """Text for the PDF core fonts, which only know Latin-1 (so "€" becomes "EUR")."""
    return text.translate(_NOT_LATIN1).encode("latin-1", "replace").decode("latin-1")


CSV_FIELDS = (
    "invoice_number",
    "invoice_id",
    "customer_id",
    "period",
    "line_no",
    "kind",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "amount_unrounded",
    "amount",
    "currency",
    "tier",
    "tou_period",
    "estimated_share",
    "corrects_invoice",
)


def invoice_csv(inv: Invoice) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for ln in inv.lines:
        w.writerow(
            (
                inv.number or "",
                inv.invoice_id,
                inv.customer_id,
                inv.period,
                ln.line_no,
                ln.kind.value,
                ln.description,
                ln.quantity,
                ln.unit,
                "" if ln.unit_price is None else ln.unit_price,
                ln.amount_unrounded,
                ln.amount,
                inv.currency,
                ln.tier or "",
                ln.tou_period or "",
                ln.estimated_share,
                ln.lineage.corrects_invoice_number or "",
            )
        )
    return out.getvalue()


def legal_document(conn: Conn, invoice_id: int) -> LegalDocument:
    """Load invoice ``invoice_id`` with its snapshots and meter names as a legal document."""
    inv = invoices.get_invoice(conn, invoice_id)
    customer = invoices.customer_snapshot(conn, invoice_id)
    series = sorted({s for ln in inv.lines for s in ln.lineage.series_ids})
    return invoice_document(
        inv,
        customer,
        issuers.invoice_issuer(conn, invoice_id),
        usage_store.series_info(conn, series),
    )


def legal_json(doc: LegalDocument) -> dict[str, Any]:
    """The legal fields of an invoice for API clients: dates, parties' tax ids, VAT breakdown
    and the payment instruction (amounts as exact decimal strings)."""
    s = doc.seller
    return {
        "issue_date": doc.issue_date.isoformat() if doc.issue_date else None,
        "due_date": doc.due_date.isoformat() if doc.due_date else None,
        "supply_period": {
            "first": doc.supply_first.isoformat(),
            "last": doc.supply_last.isoformat(),
        },
        "locale": doc.locale,
        "seller": None
        if s is None
        else {"code": s.code, "name": s.name, "vat_id": s.vat_id, "company_id": s.company_id},
        "buyer": {"name": doc.buyer.name, "vat_id": doc.buyer.tax.vat_id or None},
        "vat": [
            {
                "category": g.category.value,
                "rate": str(g.rate),
                "taxable": str(g.taxable),
                "tax": str(g.tax),
                "exemption_code": g.exemption_code or None,
                "exemption_reason": g.exemption_reason or None,
            }
            for g in doc.vat
        ],
        "payment": None
        if s is None
        else {
            "iban": s.iban,
            "bic": s.bic or None,
            "reference": doc.payment_reference,
            "terms_days": s.payment_terms_days,
        },
        "notes": list(doc.notes),
    }


def credit_note_legal_document(conn: Conn, credit_note_id: int) -> LegalDocument:
    """Load credit note ``credit_note_id`` with its snapshots as a legal document."""
    cn = credit_notes.get_credit_note(conn, credit_note_id)
    customer, issuer = credit_notes.snapshots(conn, credit_note_id)
    series = sorted({s for ln in cn.lines for s in ln.lineage.series_ids})
    return credit_note_document(
        cn,
        customer,
        None if issuer is None else Issuer.from_json(issuer),
        usage_store.series_info(conn, series),
        corrected=invoices.get_invoice(conn, cn.corrects_invoice_id, with_lines=False),
    )


def credit_note_json(doc: LegalDocument) -> dict[str, Any]:
    """A credit note as JSON: number, the invoice it corrects, dates, lines and totals."""
    return {
        "credit_note_id": doc.document_id,
        "number": doc.number,
        "corrects": None
        if doc.corrects is None
        else {
            "number": doc.corrects.number,
            "issue_date": doc.corrects.issue_date.isoformat() if doc.corrects.issue_date else None,
        },
        "period": doc.period,
        "issue_date": doc.issue_date.isoformat() if doc.issue_date else None,
        "currency": doc.currency,
        "subtotal": str(doc.net_total),
        "tax": str(doc.tax_total),
        "total": str(doc.total),
        "reason": doc.notes[0] if doc.notes else "",
        "lines": [
            {
                "line_no": ln.line_no,
                "description": ln.label,
                "quantity": str(ln.quantity),
                "unit": ln.unit,
                "unit_price": str(ln.unit_price),
                "amount": str(ln.net_amount),
            }
            for ln in doc.lines
        ],
    }


def render_credit_note(conn: Conn, credit_note_id: int, fmt: str) -> bytes:
    """A credit note as ``json`` or any format of ``render_document``."""
    doc = credit_note_legal_document(conn, credit_note_id)
    if fmt == "json":
        return json.dumps(credit_note_json(doc), indent=2).encode()
    return render_document(doc, fmt)


def render(conn: Conn, invoice_id: int, fmt: str) -> bytes:
    """The invoice as ``json``, ``csv`` or any format of ``render_document``."""
    if fmt == "json":
        inv = invoices.get_invoice(conn, invoice_id)
        customer = invoices.customer_snapshot(conn, invoice_id)
        doc = invoice_json(inv, customer)
        doc["legal"] = legal_json(legal_document(conn, invoice_id))
        none = Decimal(0).quantize(Decimal(1).scaleb(-minor_units(inv.currency)))
        credits = wallets_auto_apply.credits_applied(conn, invoice_id) or none
        doc["credits_applied"] = str(credits)  # prepaid credits that paid it (wallets)
        doc["amount_due"] = str(inv.total - credits)
        return json.dumps(doc, indent=2).encode()
    if fmt == "csv":
        return invoice_csv(invoices.get_invoice(conn, invoice_id)).encode()
    return render_document(legal_document(conn, invoice_id), fmt)


def render_document(doc: LegalDocument, fmt: str) -> bytes:
    """A legal document (invoice or credit note) as ``html``, ``pdf``, ``ubl`` (UBL 2.1,
    Peppol BIS Billing 3), ``cii`` (Factur-X EN 16931 XML) or ``facturx`` (PDF/A-3 + CII)."""
    if fmt == "html":
        return invoice_html(doc).encode()
    if fmt == "pdf":
        return invoice_pdf(doc, find_fonts())
    if fmt == "ubl":
        return ubl_xml(doc)
    if fmt == "cii":
        return cii_xml(doc)
    if fmt == "facturx":
        fonts = find_fonts()
        if fonts is None:
            raise EInvoiceError(
                "Factur-X needs an embeddable font (PDF/A-3): install fonts-dejavu-core"
            )
        return facturx_pdf(doc, invoice_pdf(doc, fonts))
    raise ValueError(f"unknown format {fmt!r}")


# Media type and file suffix of each document format.
MEDIA: Mapping[str, tuple[str, str]] = {
    "json": ("application/json", "json"),
    "html": ("text/html; charset=utf-8", "html"),
    "pdf": ("application/pdf", "pdf"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "ubl": ("application/xml", "ubl.xml"),
    "cii": ("application/xml", "cii.xml"),
    "facturx": ("application/pdf", "facturx.pdf"),
}


def explain(conn: Conn, invoice_id: int, line_id: int) -> dict[str, Any]:
    """Why this line: its meters, intervals, readings, estimated quantity and plan version."""
    inv = invoices.get_invoice(conn, invoice_id, with_lines=False)
    ln = invoices.get_line(conn, invoice_id, line_id)
    lin = ln.lineage
    meters = usage_store.series_info(conn, lin.series_ids)
    plan: dict[str, Any] | None = None
    if lin.plan_version_id is not None:
        pv = store.get_plan_version(conn, lin.plan_version_id)
        p = store.get_plan(conn, pv.plan_id)
        plan = {
            "plan_id": p.plan_id,
            "code": p.code,
            "version": pv.version,
            "plan_version_id": pv.plan_version_id,
            "document": dict(pv.document),
        }
    return {
        "invoice_id": inv.invoice_id,
        "invoice_number": inv.number,
        "period": inv.period,
        "line": line_json(ln),
        "meters": [
            {"series_id": sid, "device_id": m[0], "meter": m[1], "metric": m[2], "unit": m[3]}
            for sid, m in sorted(meters.items())
        ],
        "intervals": {
            "from": lin.interval_from.isoformat() if lin.interval_from else None,
            "to": lin.interval_to.isoformat() if lin.interval_to else None,
            "count": lin.interval_count,
            "minutes": 15,
        },
        "reading_count": lin.reading_count,
        "estimated_quantity": str(lin.estimated_quantity),
        "plan": plan,
        "corrects": None
        if lin.corrects_invoice_id is None
        else {
            "invoice_id": lin.corrects_invoice_id,
            "number": lin.corrects_invoice_number,
            "period": lin.corrected_period,
        },
    }
