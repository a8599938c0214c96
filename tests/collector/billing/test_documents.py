"""Invoice documents rendered from a hand-built invoice (pure renderers): the legal fields,
locale formatting, words instead of ids, and golden files of the text a customer reads."""

from __future__ import annotations

import csv
import io
import os
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from collector.billing.document_text import as_plain_text, document_text
from collector.billing.documents import ESTIMATE_NOTE, invoice_csv, invoice_html, invoice_pdf
from collector.billing.legal import invoice_document
from collector.billing.pdf_fonts import find_fonts
from tests.collector.billing.legal_fixtures import CUSTOMER, ISSUER, METERS, document, invoice

D = Decimal
GOLDEN = Path(__file__).parent / "golden"


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TALLY_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "language", "tax"),
    [
        ("invoice_nl.txt", "nl", {}),
        ("invoice_en.txt", "en", {}),
        ("invoice_de_reverse_charge.txt", "de", {"category": "AE"}),
        ("invoice_fr_exempt.txt", "fr", {"category": "E", "exemption_reason": "Art. 261 CGI"}),
    ],
)
def test_document_text_matches_golden_file(name: str, language: str, tax: dict[str, str]) -> None:
    """Everything a customer reads (parties, dates, lines, VAT breakdown, payment) is pinned."""
    _golden(name, as_plain_text(document_text(document(language, **tax))))


def test_dutch_invoice_has_every_legal_field() -> None:
    """Art. 226 fields in Dutch with nl_NL formats: seller + VAT id, buyer VAT id, issue and due
    dates, supply period, quantity, unit price, rate, VAT amount, IBAN and reference."""
    text = as_plain_text(document_text(document("nl")))
    for expected in (
        "Tally Energy B.V.",
        "Btw-nummer: NL859123456B01",
        "Btw-nummer: NL001234567B01",
        "Inschrijvingsnummer: 12345678",
        "Factuurnummer: INV-2026-000042",
        "Factuurdatum: 5 april 2026",
        "Vervaldatum: 19 april 2026",
        "Leveringsperiode: 1 maart 2026 – 31 maart 2026",
        "2.972 kWh",
        "€\u00a00,25",
        "€\u00a0743,00",
        "S – standaardtarief | 21% | €\u00a0753,00 | €\u00a0158,13",
        "Totaal incl. btw: €\u00a0911,13",
        "NL91ABNA0417164300",
        "o.v.v. INV-2026-000042",
        "Uw referentie: PO-2026-17",
    ):
        assert expected in text, expected


def test_lines_are_named_in_words_not_ids() -> None:
    """Charge kind, TOU period, tier and meter in words; no 'energy', no series ids."""
    d = document("nl")
    assert d.lines[0].label == "Verbruik, peak, staffel 2 (meter meter-7 · main)"
    assert d.lines[1].label == "Vaste kosten (meter meter-7 · main)"
    assert d.locale == "nl_NL"


def test_reverse_charge_prints_the_legal_note_and_zero_vat() -> None:
    """Category AE: 0 % VAT and the article 196 note."""
    text = as_plain_text(document_text(document("en", category="AE")))
    assert "VAT reverse charged" in text
    assert "AE – reverse charge | 0% | €\u00a0753,00 | €\u00a00,00" in text  # en_NL


def test_draft_without_issuer_says_so() -> None:
    """A draft has no issue or due date; a missing issuer is visible, not invented."""
    from dataclasses import replace  # noqa: PLC0415

    from collector.billing.model import InvoiceStatus  # noqa: PLC0415

    draft = replace(invoice(), status=InvoiceStatus.DRAFT, number=None, finalized_at=None)
    d = invoice_document(draft, CUSTOMER, None, METERS)
    text = as_plain_text(document_text(d))
    assert d.issue_date is None
    assert d.due_date is None
    assert "gegevens afzender niet ingesteld" in text
    assert "Factuurdatum: nog niet uitgereikt (concept)" in text


def test_pdf_embeds_a_unicode_font_and_holds_the_amounts() -> None:
    """With DejaVu Sans embedded, the PDF's text has the locale's amounts and the € sign."""
    fonts = find_fonts()
    assert fonts is not None, "fonts-dejavu-core is installed by .ci/run"
    data = invoice_pdf(document("fr", category="E", exemption_reason="Art. 261 CGI"), fonts)
    assert data.startswith(b"%PDF-")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "753,00" in text
    assert "€" in text
    assert "Art. 261 CGI" in text
    assert b"/FontFile2" in data  # embedded TrueType


def test_pdf_without_fonts_still_renders() -> None:
    """Core fonts as a fallback (Windows-1252 text)."""
    data = invoice_pdf(document("de", D(48)))
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")


def test_html_flags_estimated_quantities_with_a_footnote() -> None:
    """Lines with estimated usage get an asterisk and the footnote."""
    page = invoice_html(document("en", D(12)))
    assert "INV-2026-000042" in page
    assert "Damrak 1" in page
    assert "(meter meter-7 · main) *" in page
    assert ESTIMATE_NOTE in page


def test_html_without_estimates_has_no_footnote() -> None:
    """No estimated usage, no footnote."""
    assert ESTIMATE_NOTE not in invoice_html(document("en"))


def test_html_in_dutch_uses_dutch_labels_and_formats() -> None:
    """A Dutch customer's page says Factuur and prints € 911,13, declaring lang=nl."""
    page = invoice_html(document("nl"))
    assert "<html lang=nl>" in page
    assert "<h1>Factuur INV-2026-000042</h1>" in page
    assert "€\u00a0911,13" in page
    assert "Invoice" not in page


def test_html_in_german_translates_the_estimate_note() -> None:
    """A German customer's estimate footnote is German, not the English one."""
    page = invoice_html(document("de", D(48)))
    assert "<h1>Rechnung INV-2026-000042</h1>" in page
    assert "Enthält geschätzte Mengen" in page
    assert "911,13\u00a0€" in page
    assert ESTIMATE_NOTE not in page


def test_unknown_language_falls_back_to_english() -> None:
    """A snapshot without a known language renders in English."""
    page = invoice_html(document("xx"))
    assert "<h1>Invoice INV-2026-000042</h1>" in page


def test_csv_has_one_row_per_line_with_exact_and_rounded_amounts() -> None:
    """The accounting export carries number, tier, TOU period and both amounts."""
    rows = list(csv.DictReader(io.StringIO(invoice_csv(invoice()))))
    assert len(rows) == 2
    assert rows[0]["invoice_number"] == "INV-2026-000042"
    assert (rows[0]["tier"], rows[0]["tou_period"], rows[0]["amount"]) == ("2", "peak", "743.00")


def test_issuer_round_trips_through_json() -> None:
    """What is stored as the issuer snapshot reads back equal."""
    from collector.billing.parties import Issuer  # noqa: PLC0415

    assert Issuer.from_json(ISSUER.to_json()) == ISSUER


def test_credit_note_document_refers_to_the_invoice_in_the_customers_language() -> None:
    """A Dutch credit note: its own number, the invoice it corrects with its issue date, the
    reason in Dutch and positive amounts credited."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from collector.billing.credit_notes import LATE_DATA_REASON, CreditNote, CreditNoteLine  # noqa: PLC0415
    from collector.billing.legal import credit_note_document  # noqa: PLC0415
    from collector.billing.model import Lineage  # noqa: PLC0415

    lin = Lineage((11,), (3,), None, None, 0, 0, D(0), 1, 42, "INV-2026-000042", "2026-03")
    line = CreditNoteLine(1, "x", D(1), "correction", D("0.25"), D("0.25"), D("0.25"), 3, lin)
    cn = CreditNote(
        5,
        "CN-2026-000001",
        7,
        42,
        LATE_DATA_REASON,
        "EUR",
        D("0.21"),
        D("0.25"),
        D("0.05"),
        D("0.30"),
        "tally-nl",
        datetime(2026, 5, 5, tzinfo=UTC),
        (line,),
    )
    text = as_plain_text(
        document_text(credit_note_document(cn, CUSTOMER, ISSUER, METERS, corrected=invoice()))
    )
    _golden("credit_note_nl.txt", text)
    assert "Creditnota CN-2026-000001" in text
    assert "Corrigeert factuur INV-2026-000042 van 5 april 2026" in text
    assert "Later ontvangen meterstanden" in text
    assert "Gecrediteerd bedrag: €\u00a00,30" in text
