"""The credit notes of a final invoice on its portal page: number, issue date, reason, total,
and the documents to download (PDF and e-invoices), each through the portal's own routes."""

from __future__ import annotations

from collections.abc import Sequence

from collector.billing.credit_notes import CreditNote
from collector.portal.layout import text
from collector.portal.locale_format import LocalFormat
from collector.portal.words import Words

__all__ = ["CREDIT_NOTE_FORMATS", "credit_notes_html"]

# (format, label) of a credit note's documents offered to the customer.
CREDIT_NOTE_FORMATS: tuple[tuple[str, str], ...] = (
    ("pdf", "PDF"),
    ("ubl", "UBL (Peppol BIS 3)"),
    ("facturx", "Factur-X"),
)


def _links(invoice_id: int, cn: CreditNote, w: Words) -> str:
    label = w["download"]
    return " ".join(
        f'<a class="button" data-format="{text(fmt)}"'
        f' href="/portal/invoices/{invoice_id}/credit-notes/{cn.credit_note_id}?format={fmt}"'
        f' aria-label="{text(label + " " + name + " " + cn.number)}">{text(name)}</a>'
        for fmt, name in CREDIT_NOTE_FORMATS
    )


def credit_notes_html(
    invoice_id: int, notes: Sequence[CreditNote], f: LocalFormat, w: Words
) -> str:
    """The section listing the credit notes that correct the invoice (or saying there are none)."""
    head = (
        '<section id="credit-notes" aria-labelledby="cn-h">'
        f'<h2 id="cn-h">{text(w["credit_notes"])}</h2>'
    )
    if not notes:
        return f'{head}<p class="note">{text(w["credit_notes_none"])}</p></section>'
    rows = "".join(
        f'<tr data-credit-note="{cn.credit_note_id}"><td>{text(cn.number)}</td>'
        f'<td>{text(f.day(cn.issued_at))}</td><td class="t">{text(cn.reason)}</td>'
        f'<td class="n">{text(f.money(cn.total, cn.currency))}</td>'
        f"<td>{_links(invoice_id, cn, w)}</td></tr>"
        for cn in notes
    )
    return (
        f'{head}<div class="scroll" tabindex="0"><table>'
        f'<tr><th scope="col">{text(w["credit_note"])}</th>'
        f'<th scope="col">{text(w["issued"])}</th><th scope="col">{text(w["reason"])}</th>'
        f'<th class="n" scope="col">{text(w["total"])}</th>'
        f'<th scope="col">{text(w["download"])}</th></tr>{rows}</table></div></section>'
    )
