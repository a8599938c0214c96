"""The invoice pages and the sign-in / error pages of the portal, in the customer's language
(the invoice's own words come from ``collector.billing.labels``, like its PDF)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from collector.billing.labels import labels_for
from collector.billing.model import Invoice
from collector.portal.layout import Frame, fill, page, text
from collector.portal.locale_format import LocalFormat
from collector.portal.model import InvoiceSummary
from collector.portal.words import words

__all__ = ["invoice_html", "invoices_html", "login_html", "not_found_html"]

Formats = Sequence[tuple[str, str, str]]  # (format, media type, label)


def _downloads(invoice_id: int, number: str, formats: Formats, label: str) -> str:
    return " ".join(
        f'<a class="button" href="/portal/invoices/{invoice_id}?format={text(fmt)}"'
        f' data-format="{text(fmt)}" aria-label="{text(f"{label} {name} {number}")}">'
        f"{text(label)} {text(name)}</a>"
        for fmt, _, name in formats
    )


def invoice_html(inv: Invoice, f: LocalFormat, formats: Formats) -> str:
    """The body of a final invoice's page: lines, totals, download links."""
    lab = labels_for(f.language)
    w = words(f.language)
    rows = "".join(
        f'<tr><td class="t">{text(ln.description)}{" *" if ln.is_estimated else ""}</td>'
        f'<td class="n">{text(f"{f.number(ln.quantity)} {ln.unit}")}</td>'
        f'<td class="n">{text("" if ln.unit_price is None else f.number(ln.unit_price))}'
        f'</td><td class="n">{text(f.money(ln.amount, inv.currency))}</td></tr>'
        for ln in inv.lines
    )
    estimated = any(ln.is_estimated for ln in inv.lines)
    last_day = inv.period_end.astimezone(f.zone).date() - timedelta(days=1)
    number = inv.number or ""
    return fill(
        "invoice.html",
        back=text(w["invoices"]),
        title=text(f"{lab['invoice']} {number}"),
        period_text=text(
            f"{lab['period']} {inv.period}: {f.day(inv.period_start)} – {f.day(last_day)}"
        ),
        issued=text(f.day(inv.finalized_at) if inv.finalized_at else ""),
        downloads=_downloads(inv.invoice_id, number, formats, w["download"]),
        lines=(
            f'<div class="scroll" tabindex="0"><table>'
            f'<tr><th scope="col">{text(lab["description"])}</th>'
            f'<th class="n" scope="col">{text(lab["quantity"])}</th>'
            f'<th class="n" scope="col">{text(lab["unit_price"])}</th>'
            f'<th class="n" scope="col">{text(lab["amount"])}</th></tr>{rows}</table></div>'
        ),
        subtotal_label=text(lab["subtotal"]),
        subtotal=text(f.money(inv.subtotal, inv.currency)),
        tax_label=text(f"{lab['tax']} ({f.percent(float(inv.tax_rate))})"),
        tax=text(f.money(inv.tax, inv.currency)),
        total_label=text(lab["total"]),
        total=text(f.money(inv.total, inv.currency)),
        estimate_note=text(lab["estimate_note"] if estimated else ""),
    )


def invoices_html(items: Sequence[InvoiceSummary], f: LocalFormat, formats: Formats) -> str:
    """The body of the invoice list (newest first) with every document to download. Credit
    notes, once issued, are listed here too (their own numbers, linked to their invoice)."""
    w = words(f.language)
    if not items:
        return f"<h1>{text(w['invoices'])}</h1><p>{text(w['no_invoices'])}</p>"
    rows = "".join(
        f'<tr><th scope="row"><a href="/portal/invoices/{i.invoice_id}">'
        f"{text(i.number or '')}</a></th><td>{text(i.period)}</td>"
        f'<td class="n">{text(f.money(i.total, i.currency))}</td>'
        f"<td>{_downloads(i.invoice_id, i.number or '', formats, w['download'])}</td></tr>"
        for i in items
    )
    return (
        f"<h1>{text(w['invoices'])}</h1>"
        f'<div class="scroll" tabindex="0"><table><tr><th scope="col">{text(w["invoice"])}</th>'
        f'<th scope="col">{text(w["period"])}</th>'
        f'<th class="n" scope="col">{text(w["total"])}</th>'
        f'<th scope="col">{text(w["download"])}</th></tr>{rows}</table></div>'
    )


def login_html(message: str | None = None, *, prefill: str | None = None, lang: str = "en") -> str:
    """A complete sign-in page in ``lang``: a form that POSTs the code (``prefill``: from a
    link)."""
    w = words(lang)
    msg = f'<p class="error" role="alert">{text(message)}</p>' if message else ""
    return page(
        w["sign_in"],
        fill(
            "login.html",
            title=text(w["sign_in"]),
            message=msg,
            intro=text(w["sign_in_intro"]),
            label=text(w["code"]),
            value=text(prefill or ""),
            button=text(w["continue"] if prefill else w["sign_in"]),
        ),
        Frame(lang=lang),
    )


def not_found_html(frame: Frame) -> str:
    """A complete 'not found' page (also for other customers' data)."""
    w = frame.words
    return page(
        "404",
        f'<h1>404</h1><p>{text(w["not_found"])} <a href="/portal/">{text(w["back"])}</a></p>',
        frame,
    )
