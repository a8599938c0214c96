"""Invoice documents: JSON, HTML, PDF (fpdf2) and CSV lines for accounting, and the lineage
explanation of a line ("why am I billed this"). Renderers are pure; ``render``/``explain`` load.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping
from typing import Any

import psycopg
from fpdf import FPDF

from collector.billing.labels import labels_for
from collector.billing.model import Invoice, InvoiceLine
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store

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


def _period_text(inv: Invoice, customer: Mapping[str, Any], t: Mapping[str, str]) -> str:
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    tz = ZoneInfo(str(customer.get("time_zone", "UTC")))
    first = inv.period_start.astimezone(tz).date()
    last = inv.period_end.astimezone(tz).date()
    return f"{first.isoformat()} {t['to']} {last.isoformat()} {t['exclusive']}, {tz.key}"


def _title(inv: Invoice, t: Mapping[str, str]) -> str:
    number = inv.number or f"{t['draft']} {inv.invoice_id}"
    return f"{t['invoice']} {number}"


def _address(customer: Mapping[str, Any]) -> list[str]:
    a = customer.get("address", {})
    out = [a.get("line1", "")]
    if a.get("line2"):
        out.append(a["line2"])
    out.append(f"{a.get('postal_code', '')} {a.get('city', '')}".strip())
    out.append(a.get("country", ""))
    return [x for x in out if x]


def invoice_html(inv: Invoice, customer: Mapping[str, Any]) -> str:
    """The invoice as an HTML page, labelled in the customer's language."""
    e = html.escape
    t = labels_for(customer.get("language"))
    rows = "".join(
        f"<tr><td>{e(ln.description)}{' *' if ln.is_estimated else ''}</td>"
        f"<td>{e(ln.tier or '')}</td><td>{e(ln.tou_period or '')}</td>"
        f"<td class=n>{ln.quantity.normalize():f} {e(ln.unit)}</td>"
        f"<td class=n>{'' if ln.unit_price is None else f'{ln.unit_price.normalize():f}'}</td>"
        f"<td class=n>{ln.amount}</td></tr>"
        for ln in inv.lines
    )
    note = (
        f"<p class=note>{e(t['estimate_note'])}</p>"
        if any(ln.is_estimated for ln in inv.lines)
        else ""
    )
    title = e(_title(inv, t))
    lang = e(str(customer.get("language") or "en"))
    heads = "".join(
        f"<th>{e(t[k])}</th>" for k in ("description", "tier", "tou", "quantity", "unit_price")
    )
    return (
        f"<!doctype html><html lang={lang}><head><meta charset=utf-8>"
        f"<title>{title}</title><style>body{{font-family:sans-serif}}"
        "td.n{text-align:right}table{border-collapse:collapse}td,th{padding:2px 8px}</style>"
        f"</head><body><h1>{title}</h1><p>{e(t['issuer'])}: {e(inv.issuer)}</p>"
        f"<p><b>{e(str(customer.get('name', '')))}</b><br>"
        + "<br>".join(e(x) for x in _address(customer))
        + f"</p><p>{e(t['period'])}: {e(_period_text(inv, customer, t))}</p>"
        f"<table><tr>{heads}<th>{e(t['amount'])} ({e(inv.currency)})</th></tr>{rows}</table>"
        f"<p>{e(t['subtotal'])} {inv.subtotal} {e(inv.currency)}<br>"
        f"{e(t['tax'])} {(inv.tax_rate * 100).normalize():f}% {inv.tax} {e(inv.currency)}<br>"
        f"<b>{e(t['total'])} {inv.total} {e(inv.currency)}</b></p>{note}</body></html>"
    )


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def invoice_pdf(inv: Invoice, customer: Mapping[str, Any]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    t = labels_for(customer.get("language"))
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(_title(inv, t)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, _latin1(f"{t['issuer']}: {inv.issuer}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 5, _latin1(str(customer.get("name", ""))), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for line in _address(customer):
        pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.cell(
        0,
        6,
        _latin1(f"{t['period']}: {_period_text(inv, customer, t)}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    widths = (78, 12, 18, 28, 24, 28)
    pdf.set_font("Helvetica", "B", 8)
    for w, h in zip(
        widths,
        (
            *(t[k] for k in ("description", "tier", "tou", "quantity", "unit_price")),
            f"{t['amount']} {inv.currency}",
        ),
        strict=True,
    ):
        pdf.cell(w, 6, _latin1(h), border="B")
    pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    for ln in inv.lines:
        desc = ln.description + (" *" if ln.is_estimated else "")
        price = "" if ln.unit_price is None else f"{ln.unit_price.normalize():f}"[:12]
        cells = (
            desc[:60],
            ln.tier or "",
            ln.tou_period or "",
            f"{ln.quantity.normalize():f} {ln.unit}",
            price,
            str(ln.amount),
        )
        for i, (w, text) in enumerate(zip(widths, cells, strict=True)):
            pdf.cell(w, 5, _latin1(text), align="R" if i >= 3 else "L")
        pdf.ln()
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 10)
    for label, value in (
        (t["subtotal"], inv.subtotal),
        (f"{t['tax']} {(inv.tax_rate * 100).normalize():f}%", inv.tax),
    ):
        pdf.cell(160, 6, _latin1(label), align="R")
        pdf.cell(28, 6, str(value), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(160, 7, _latin1(f"{t['total']} {inv.currency}"), align="R")
    pdf.cell(28, 7, str(inv.total), align="R", new_x="LMARGIN", new_y="NEXT")
    if any(ln.is_estimated for ln in inv.lines):
        pdf.ln(4)
        pdf.set_font("Helvetica", "I", 8)
        pdf.multi_cell(0, 4, _latin1(t["estimate_note"]))
    return bytes(pdf.output())


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


def render(conn: Conn, invoice_id: int, fmt: str) -> bytes:
    """The invoice as ``json``, ``html``, ``pdf`` or ``csv`` bytes."""
    inv = invoices.get_invoice(conn, invoice_id)
    customer = invoices.customer_snapshot(conn, invoice_id)
    if fmt == "json":
        return json.dumps(invoice_json(inv, customer), indent=2).encode()
    if fmt == "html":
        return invoice_html(inv, customer).encode()
    if fmt == "pdf":
        return invoice_pdf(inv, customer)
    if fmt == "csv":
        return invoice_csv(inv).encode()
    raise ValueError(f"unknown format {fmt!r}")


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
