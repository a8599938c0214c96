"""Invoice documents rendered from a hand-built invoice (pure renderers)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

from collector.billing.documents import ESTIMATE_NOTE, invoice_csv, invoice_html, invoice_pdf
from collector.billing.model import Invoice, InvoiceLine, InvoiceStatus, Lineage, LineKind

D = Decimal
CUSTOMER = {
    "name": "Acme BV",
    "time_zone": "Europe/Amsterdam",
    "address": {
        "line1": "Damrak 1",
        "postal_code": "1012 LG",
        "city": "Amsterdam",
        "country": "NL",
    },
}


def _invoice(estimated: Decimal) -> Invoice:
    lineage = Lineage((7,), (3,), None, None, 96, 96, estimated, 1)
    line = InvoiceLine(
        1,
        LineKind.USAGE,
        "meter-1/main: energy · peak · tier 2 (kWh)",
        D("96"),
        "kWh",
        D("0.25"),
        D("24.00"),
        D("24.00"),
        lineage,
        tier="2",
        tou_period="peak",
        estimated_share=estimated / 96,
    )
    return Invoice(
        1,
        1,
        "2026-03",
        datetime(2026, 2, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 31, 22, tzinfo=UTC),
        InvoiceStatus.FINAL,
        "EUR",
        D("0.21"),
        D("24.00"),
        D("5.04"),
        D("29.04"),
        "INV-2026-000001",
        "tally-nl",
        datetime(2026, 4, 1, tzinfo=UTC),
        datetime(2026, 4, 5, tzinfo=UTC),
        (line,),
    )


def test_pdf_is_a_pdf_document() -> None:
    """The PDF renderer produces a complete PDF file."""
    data = invoice_pdf(_invoice(D(0)), CUSTOMER)
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")


def test_html_flags_estimated_quantities_with_a_footnote() -> None:
    """Lines with estimated usage get an asterisk and the footnote."""
    page = invoice_html(_invoice(D(12)), CUSTOMER)
    assert "INV-2026-000001" in page
    assert "Damrak 1" in page
    assert "(kWh) *" in page
    assert ESTIMATE_NOTE in page


def test_html_without_estimates_has_no_footnote() -> None:
    """No estimated usage, no footnote."""
    assert ESTIMATE_NOTE not in invoice_html(_invoice(D(0)), CUSTOMER)


def test_csv_has_one_row_per_line_with_exact_and_rounded_amounts() -> None:
    """The accounting export carries number, tier, TOU period and both amounts."""
    rows = list(csv.DictReader(io.StringIO(invoice_csv(_invoice(D(0))))))
    assert len(rows) == 1
    assert rows[0]["invoice_number"] == "INV-2026-000001"
    assert (rows[0]["tier"], rows[0]["tou_period"], rows[0]["amount"]) == ("2", "peak", "24.00")


def test_html_in_dutch_uses_dutch_labels() -> None:
    """A Dutch customer's page says Factuur, Btw and Totaal and declares lang=nl."""
    page = invoice_html(_invoice(D(0)), {**CUSTOMER, "language": "nl"})
    assert "<html lang=nl>" in page
    assert "<h1>Factuur INV-2026-000001</h1>" in page
    assert "Btw 21% 5.04 EUR" in page
    assert "<b>Totaal 29.04 EUR</b>" in page
    assert "Invoice" not in page


def test_html_in_german_translates_the_estimate_note() -> None:
    """A German customer's estimate footnote is German, not the English one."""
    page = invoice_html(_invoice(D(48)), {**CUSTOMER, "language": "de"})
    assert "<h1>Rechnung INV-2026-000001</h1>" in page
    assert "Enthält geschätzte Mengen" in page
    assert ESTIMATE_NOTE not in page


def test_unknown_language_falls_back_to_english() -> None:
    """A snapshot without a known language renders in English."""
    page = invoice_html(_invoice(D(0)), {**CUSTOMER, "language": "xx"})
    assert "<h1>Invoice INV-2026-000001</h1>" in page


def test_pdf_renders_in_every_language() -> None:
    """French and German labels (É, ß, ä) render into a complete PDF."""
    for lang in ("nl", "de", "fr"):
        data = invoice_pdf(_invoice(D(48)), {**CUSTOMER, "language": lang})
        assert data.startswith(b"%PDF-")
