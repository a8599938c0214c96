"""Invoice documents per second, pure rendering (no database): the legal document of a
12-line invoice rendered as HTML, PDF (font embedded), UBL 2.1, CII and Factur-X PDF/A-3.

Baseline, measured in the same run: the PDF with the core Helvetica font (not embedded), as
every invoice was rendered before; the embedded Unicode font (needed for "€ 84,87" and PDF/A)
is measured beside it. Schema/rule validation is not timed: it runs in
the tests, not at export.

    .venv/bin/python bench/einvoice.py [--seconds 3]

The final ``RESULT`` line: figure = UBL documents/s, baseline = core-font PDF documents/s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from collector.billing.documents import invoice_html, invoice_pdf
from collector.billing.einvoice_cii import cii_xml
from collector.billing.einvoice_facturx import facturx_pdf
from collector.billing.einvoice_ubl import ubl_xml
from collector.billing.legal import LegalDocument, invoice_document
from collector.billing.model import Address, Invoice, InvoiceLine, InvoiceStatus, Lineage, LineKind
from collector.billing.money import compute_totals, round_money
from collector.billing.parties import Issuer
from collector.billing.pdf_fonts import find_fonts

D = Decimal


def _document() -> LegalDocument:
    lineage = Lineage((1,), (1,), None, None, 2976, 2976, D(0), 1)
    lines = []
    for no in range(1, 13):
        q, p = D("248.123456"), D("0.2") + D(no) / 100
        exact = q * p
        lines.append(
            InvoiceLine(
                no,
                LineKind.USAGE,
                f"dev-{no}/main: energy · peak · tier 1 (kWh)",
                q,
                "kWh",
                p,
                exact,
                round_money(exact, "EUR"),
                lineage,
                tier="1",
                tou_period="peak",
            )
        )
    totals = compute_totals(((ln.amount_unrounded, ln.amount) for ln in lines), D("0.21"), "EUR")
    inv = Invoice(
        1,
        1,
        "2026-03",
        datetime(2026, 2, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 31, 22, tzinfo=UTC),
        InvoiceStatus.FINAL,
        "EUR",
        D("0.21"),
        totals.subtotal,
        totals.tax,
        totals.total,
        "INV-2026-000001",
        "tally-nl",
        datetime(2026, 4, 1, tzinfo=UTC),
        datetime(2026, 4, 5, tzinfo=UTC),
        tuple(lines),
    )
    customer = {
        "name": "Acme BV",
        "time_zone": "Europe/Amsterdam",
        "language": "nl",
        "address": {
            "line1": "Damrak 1",
            "postal_code": "1012 LG",
            "city": "Amsterdam",
            "country": "NL",
        },
        "tax": {"business": True, "vat_id": "NL001234567B01", "peppol_endpoint": "0106:1"},
    }
    issuer = Issuer(
        "tally-nl",
        "Tally Energy B.V.",
        Address("Keizersgracht 100", "Amsterdam", "NL", "1015 AA"),
        "NL859123456B01",
        "NL91ABNA0417164300",
        peppol_endpoint="0106:12345678",
    )
    meters = {1: ("dev-1", "main", "energy", "kWh")}
    return invoice_document(inv, customer, issuer, meters)


def _rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up (font parsing, schema caches)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="time per format")
    args = p.parse_args()
    doc = _document()
    fonts = find_fonts()
    if fonts is None:
        raise SystemExit("install fonts-dejavu-core (the PDF font)")
    rates = {
        "baseline: PDF, core font (not embedded)": _rate(lambda: invoice_pdf(doc), args.seconds),
        "PDF, DejaVu Sans embedded": _rate(lambda: invoice_pdf(doc, fonts), args.seconds),
        "HTML": _rate(lambda: invoice_html(doc), args.seconds),
        "UBL 2.1 (Peppol BIS 3)": _rate(lambda: ubl_xml(doc), args.seconds),
        "CII (Factur-X EN 16931)": _rate(lambda: cii_xml(doc), args.seconds),
        "Factur-X PDF/A-3 (PDF + CII + XSD check)": _rate(
            lambda: facturx_pdf(doc, invoice_pdf(doc, fonts)), args.seconds
        ),
    }
    for name, rate in rates.items():
        print(f"{name:<44} {rate:>9,.1f} documents/s  {1000 / rate:>8.2f} ms each")
    pdf, ubl = rates["baseline: PDF, core font (not embedded)"], rates["UBL 2.1 (Peppol BIS 3)"]
    print(
        f"RESULT name=einvoice figure={ubl:.0f} UBL documents/s baseline={pdf:.0f} core-font"
        " PDF documents/s (12-line invoice)"
    )


if __name__ == "__main__":
    main()
