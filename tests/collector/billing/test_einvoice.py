"""E-invoices: UBL 2.1 (Peppol BIS Billing 3.0), CII (Factur-X EN 16931) and Factur-X PDF/A-3,
validated against the official schemas and the CEN EN 16931 rules, plus the Peppol BIS rules
that those do not cover (endpoints, buyer reference, one note, line arithmetic)."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal
from typing import Any

import facturx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pypdf import PdfReader

from collector.billing.documents import invoice_pdf
from collector.billing.einvoice_cii import RAM, cii_xml
from collector.billing.einvoice_facturx import facturx_pdf
from collector.billing.einvoice_ubl import CAC, CBC, CUSTOMIZATION, PROFILE, ubl_xml
from collector.billing.legal import LegalDocument, invoice_document
from collector.billing.model import InvoiceStatus
from collector.billing.money import compute_totals, round_money
from collector.billing.pdf_fonts import find_fonts
from collector.errors import Conflict
from tests.collector.billing.einvoice_checks import CII_RULES, UBL_RULES, check_xsd, rule_failures
from tests.collector.billing.legal_fixtures import CUSTOMER, ISSUER, METERS, document, invoice

D = Decimal
NS = {"cac": CAC, "cbc": CBC, "ram": RAM}
CASES = [
    pytest.param({}, id="S-21%"),
    pytest.param({"category": "AE"}, id="AE-reverse-charge"),
    pytest.param({"category": "E", "exemption_reason": "Art. 261 CGI"}, id="E-exempt"),
    pytest.param({"category": "K"}, id="K-intra-community"),
]


def _text(tree: Any, path: str) -> str:
    found = tree.findall(path, NS)
    assert len(found) == 1, path
    return str(found[0].text)


@pytest.mark.parametrize("tax", CASES)
def test_ubl_is_schema_valid_and_passes_en16931_rules(tax: dict[str, str]) -> None:
    """OASIS UBL 2.1 schema and every fatal CEN EN 16931 rule (BR-*, BR-CO-*, BR-AE-*…)."""
    xml = ubl_xml(document("nl", **tax))
    check_xsd(xml, "ubl-2.1-invoice")
    assert rule_failures(xml, UBL_RULES) == []


@pytest.mark.parametrize("tax", CASES)
def test_cii_is_schema_valid_and_passes_en16931_rules(tax: dict[str, str]) -> None:
    """Factur-X EN 16931 schema and the Factur-X EN 16931 rules."""
    xml = cii_xml(document("nl", **tax))
    check_xsd(xml, "factur-x")
    assert rule_failures(xml, CII_RULES) == []


def test_the_rule_check_catches_an_inconsistent_total() -> None:
    """The validators are not vacuous: a payable amount one cent off fails BR-CO-15."""
    ubl = ubl_xml(document("nl")).replace(b">911.13<", b">911.14<")
    assert any(f.startswith("BR-CO-15") for f in rule_failures(ubl, UBL_RULES))
    cii = cii_xml(document("nl")).replace(b">911.13<", b">911.14<")
    assert any(f.startswith("BR-CO-15") for f in rule_failures(cii, CII_RULES))


def test_ubl_carries_the_mandatory_business_terms() -> None:
    """BT-1, 2, 3, 5, 9, 10, 24, 27, 31, 40, 44, 48, 55, 73/74, 84, 106, 110, 112, 115."""
    tree = etree.fromstring(ubl_xml(document("nl")))
    expected = {
        "cbc:CustomizationID": CUSTOMIZATION,
        "cbc:ProfileID": PROFILE,
        "cbc:ID": "INV-2026-000042",
        "cbc:IssueDate": "2026-04-05",
        "cbc:DueDate": "2026-04-19",
        "cbc:InvoiceTypeCode": "380",
        "cbc:DocumentCurrencyCode": "EUR",
        "cbc:BuyerReference": "PO-2026-17",
        "cac:InvoicePeriod/cbc:StartDate": "2026-03-01",
        "cac:InvoicePeriod/cbc:EndDate": "2026-03-31",
        "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName": (
            "Tally Energy B.V."
        ),
        "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID": (
            "NL859123456B01"
        ),
        "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/"
        "cbc:IdentificationCode": "NL",
        "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName": (
            "Acme BV"
        ),
        "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID": (
            "NL001234567B01"
        ),
        "cac:PaymentMeans/cbc:PaymentMeansCode": "58",
        "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID": "NL91ABNA0417164300",
        "cac:PaymentMeans/cbc:PaymentID": "INV-2026-000042",
        "cac:LegalMonetaryTotal/cbc:LineExtensionAmount": "753.00",
        "cac:TaxTotal/cbc:TaxAmount": "158.13",
        "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount": "911.13",
        "cac:LegalMonetaryTotal/cbc:PayableAmount": "911.13",
    }
    for path, value in expected.items():
        assert _text(tree, path) == value, path


def test_ubl_meets_peppol_rules_beyond_en16931() -> None:
    """Both endpoints with a scheme (R010/R020), one note at most, and every line amount equal
    to quantity x price within Peppol's 0.02 slack (R120); the line sum is the net total."""
    tree = etree.fromstring(ubl_xml(document("de", D(100), category="AE")))
    for party in ("AccountingSupplierParty", "AccountingCustomerParty"):
        ep = tree.find(f"cac:{party}/cac:Party/cbc:EndpointID", NS)
        assert ep is not None
        assert ep.get("schemeID") == "0106"
    assert len(tree.findall("cbc:Note", NS)) == 1
    total = D(0)
    for line in tree.findall("cac:InvoiceLine", NS):
        q = D(_text(line, "cbc:InvoicedQuantity"))
        p = D(_text(line, "cac:Price/cbc:PriceAmount"))
        net = D(_text(line, "cbc:LineExtensionAmount"))
        assert abs(q * p - net) <= D("0.02")
        assert p >= 0
        total += net
    assert total == D(_text(tree, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount"))
    assert not [el for el in tree.iter() if len(el) == 0 and not (el.text or "").strip()]


def test_negative_line_has_negative_quantity_and_positive_price() -> None:
    """A credit line (late data) keeps BR-27: the net price is never negative."""
    doc = document("nl")
    credit = replace(doc.lines[1], unit_price=D("-10.00"), net_amount=D("-10.00"))
    doc = replace(
        doc,
        lines=(doc.lines[0], credit),
        net_total=D("733.00"),
        tax_total=D("153.93"),
        total=D("886.93"),
        vat=(replace(doc.vat[0], taxable=D("733.00"), tax=D("153.93")),),
    )
    xml = ubl_xml(doc)
    check_xsd(xml, "ubl-2.1-invoice")
    assert rule_failures(xml, UBL_RULES) == []
    line = etree.fromstring(xml).findall("cac:InvoiceLine", NS)[1]
    assert _text(line, "cbc:InvoicedQuantity") == "-1"
    assert _text(line, "cac:Price/cbc:PriceAmount") == "10"


def _draft() -> LegalDocument:
    inv = replace(invoice(), status=InvoiceStatus.DRAFT, number=None, finalized_at=None)
    return invoice_document(inv, CUSTOMER, ISSUER, METERS)


def test_drafts_and_documents_without_issuer_are_not_exported() -> None:
    """A draft has no number or issue date; without an issuer there is no seller: 409-class."""
    with pytest.raises(Conflict, match="finalize the invoice first"):
        ubl_xml(_draft())
    with pytest.raises(Conflict, match="BG-4 seller"):
        cii_xml(replace(document("nl"), seller=None))


def test_facturx_is_pdfa3_with_the_cii_embedded() -> None:
    """The Factur-X PDF embeds factur-x.xml (valid EN 16931), declares PDF/A-3 in its XMP and
    still shows the invoice's text."""
    fonts = find_fonts()
    assert fonts is not None, "fonts-dejavu-core is installed by .ci/run"
    doc = document("nl")
    pdf = facturx_pdf(doc, invoice_pdf(doc, fonts))
    name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml"
    assert xml == cii_xml(doc)
    reader = PdfReader(io.BytesIO(pdf))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp
    assert b"EN 16931" in xmp
    assert "€\u00a0911,13" in reader.pages[0].extract_text()


@st.composite
def _rated_lines(draw: st.DrawFn) -> list[tuple[Decimal, Decimal]]:
    """(quantity, unit price) pairs as the rating engine produces them (6-decimal quantities,
    prices to 1e-5), some negative prices (credits for late data)."""
    n = draw(st.integers(1, 12))
    out = []
    for _ in range(n):
        q = Decimal(draw(st.integers(1, 10**10))).scaleb(-6)
        p = Decimal(draw(st.integers(-50_000, 200_000))).scaleb(-5)
        out.append((q, p))
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=_rated_lines(),
    rate=st.sampled_from([D("0.21"), D("0.19"), D("0.055"), D("0.09"), D("0.2")]),
)
def test_any_invoice_by_the_money_rule_passes_the_en16931_sums(
    lines: list[tuple[Decimal, Decimal]], rate: Decimal
) -> None:
    """Lines rounded once, tax on the exact subtotal (docs/billing.md §8): the UBL and CII pass
    every EN 16931 rule, BR-CO-17 (VAT = taxable x rate) included, for any such invoice."""
    inv = invoice()
    template = inv.lines[0]
    built = []
    for no, (q, p) in enumerate(lines, start=1):
        exact = q * p
        built.append(
            replace(
                template,
                line_no=no,
                quantity=q,
                unit_price=p,
                amount_unrounded=exact,
                amount=round_money(exact, "EUR"),
                estimated_share=D(0),
            )
        )
    totals = compute_totals(((ln.amount_unrounded, ln.amount) for ln in built), rate, "EUR")
    inv = replace(
        inv,
        lines=tuple(built),
        tax_rate=rate,
        subtotal=totals.subtotal,
        tax=totals.tax,
        total=totals.total,
    )
    doc = invoice_document(inv, CUSTOMER, ISSUER, METERS)
    ubl = ubl_xml(doc)
    assert rule_failures(ubl, UBL_RULES) == []
    assert rule_failures(cii_xml(doc), CII_RULES) == []


def test_a_line_without_quantity_or_price_still_multiplies_out() -> None:
    """A flat amount (quantity 0) is sent as 1 x amount; no price: amount / quantity (R120)."""
    inv = invoice()
    flat = replace(inv.lines[1], quantity=D(0), unit_price=None)
    unpriced = replace(inv.lines[0], unit_price=None)
    doc = invoice_document(replace(inv, lines=(unpriced, flat)), CUSTOMER, ISSUER, METERS)
    assert (doc.lines[0].quantity, doc.lines[0].unit_price) == (D("2972.000000"), D("0.25"))
    assert (doc.lines[1].quantity, doc.lines[1].unit_price) == (D(1), D("10.00"))
    assert rule_failures(ubl_xml(doc), UBL_RULES) == []
