"""A hand-built final invoice with its customer snapshot, issuer and meter names: the input of
the document, golden-file and e-invoice tests (Amsterdam, March 2026, 911.13 EUR)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from collector.billing.legal import LegalDocument, invoice_document
from collector.billing.model import Address, Invoice, InvoiceLine, InvoiceStatus, Lineage, LineKind
from collector.billing.parties import Issuer

D = Decimal
ZERO = Decimal(0)

ISSUER = Issuer(
    code="tally-nl",
    name="Tally Energy B.V.",
    address=Address("Keizersgracht 100", "Amsterdam", "NL", "1015 AA"),
    vat_id="NL859123456B01",
    iban="NL91ABNA0417164300",
    bic="ABNANL2A",
    company_id="12345678",
    payment_terms_days=14,
    email="billing@tally.example",
    peppol_endpoint="0106:12345678",
)

CUSTOMER: dict[str, Any] = {
    "customer_id": 7,
    "name": "Acme BV",
    "time_zone": "Europe/Amsterdam",
    "language": "nl",
    "currency": "EUR",
    "address": {
        "line1": "Damrak 1",
        "postal_code": "1012 LG",
        "city": "Amsterdam",
        "country": "NL",
    },
    "tax": {
        "business": True,
        "vat_id": "NL001234567B01",
        "category": "S",
        "peppol_endpoint": "0106:87654321",
        "buyer_reference": "PO-2026-17",
    },
}

METERS = {11: ("meter-7", "main", "energy", "kWh")}


def _lineage(estimated: Decimal = ZERO) -> Lineage:
    return Lineage(
        (11,),
        (3,),
        datetime(2026, 2, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 31, 22, tzinfo=UTC),
        2972,
        2972,
        estimated,
        1,
    )


def invoice(estimated: Decimal = ZERO) -> Invoice:
    lines = (
        InvoiceLine(
            1,
            LineKind.USAGE,
            "meter-7/main: energy · peak · tier 2 (kWh)",
            D("2972.000000"),
            "kWh",
            D("0.25"),
            D("743.000000"),
            D("743.00"),
            _lineage(estimated),
            tier="2",
            tou_period="peak",
            estimated_share=estimated / D(2972),
        ),
        InvoiceLine(
            2,
            LineKind.FIXED,
            "meter-7/main: standing (month)",
            D("1"),
            "month",
            D("10.00"),
            D("10.00"),
            D("10.00"),
            _lineage(),
        ),
    )
    return Invoice(
        invoice_id=42,
        customer_id=7,
        period="2026-03",
        period_start=datetime(2026, 2, 28, 23, tzinfo=UTC),
        period_end=datetime(2026, 3, 31, 22, tzinfo=UTC),
        status=InvoiceStatus.FINAL,
        currency="EUR",
        tax_rate=D("0.21"),
        subtotal=D("753.00"),
        tax=D("158.13"),
        total=D("911.13"),
        number="INV-2026-000042",
        issuer="tally-nl",
        drafted_at=datetime(2026, 4, 1, tzinfo=UTC),
        finalized_at=datetime(2026, 4, 5, 9, tzinfo=UTC),
        lines=lines,
    )


def document(language: str = "nl", estimated: Decimal = ZERO, **tax: Any) -> LegalDocument:
    """The legal document of ``invoice()`` for a customer in ``language`` (tax overrides)."""
    customer = {**CUSTOMER, "language": language, "tax": {**CUSTOMER["tax"], **tax}}
    inv = invoice(estimated)
    if tax.get("category", "S") != "S":
        inv = replace(inv, tax_rate=D(0), tax=D("0.00"), total=D("753.00"))
    return invoice_document(inv, customer, ISSUER, METERS)
