"""A final invoice or credit note as UN/CEFACT Cross Industry Invoice (CII D16B) XML in the
Factur-X / ZUGFeRD EN 16931 profile (pure). ``einvoice_facturx`` embeds it in a PDF/A-3.

Element order follows the Factur-X EN 16931 schema; validated in the tests against the XSD and
the EN 16931 rules shipped with the ``factur-x`` package.
"""

from __future__ import annotations

from datetime import date
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

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
GUIDELINE = "urn:cen.eu:en16931:2017"
SEPA_CREDIT_TRANSFER = "58"

Element = Any  # lxml elements are untyped


def _ram(parent: Element, name: str, text: str | None = None, **attrs: str) -> Element:
    el = etree.SubElement(parent, f"{{{RAM}}}{name}", attrs)
    if text is not None:
        el.text = text
    return el


def _date(parent: Element, name: str, value: date, ns: str = UDT) -> None:
    holder = _ram(parent, name)
    el = etree.SubElement(holder, f"{{{ns}}}DateTimeString", {"format": "102"})
    el.text = value.strftime("%Y%m%d")


def _address(parent: Element, a: Address) -> None:
    pa = _ram(parent, "PostalTradeAddress")
    if a.postal_code:
        _ram(pa, "PostcodeCode", a.postal_code)
    _ram(pa, "LineOne", a.line1)
    if a.line2:
        _ram(pa, "LineTwo", a.line2)
    _ram(pa, "CityName", a.city)
    _ram(pa, "CountryID", a.country)


def _party(
    parent: Element,
    tag: str,
    *,
    name: str,
    company_id: str,
    address: Address,
    endpoint: str,
    vat_id: str,
) -> None:
    party = _ram(parent, tag)
    _ram(party, "Name", name)
    if company_id:
        _ram(_ram(party, "SpecifiedLegalOrganization"), "ID", company_id)
    _address(party, address)
    if endpoint:
        scheme, value = endpoint.split(":", 1)
        _ram(_ram(party, "URIUniversalCommunication"), "URIID", value, schemeID=scheme)
    if vat_id:
        _ram(_ram(party, "SpecifiedTaxRegistration"), "ID", vat_id, schemeID="VA")


def cii_xml(doc: LegalDocument) -> bytes:
    """The document as Factur-X EN 16931 CII bytes, UTF-8."""
    require_exportable(doc)
    assert doc.number is not None
    assert doc.issue_date is not None
    root = etree.Element(
        f"{{{RSM}}}CrossIndustryInvoice",
        nsmap={"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT},
    )
    ctx = etree.SubElement(root, f"{{{RSM}}}ExchangedDocumentContext")
    _ram(_ram(ctx, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE)
    head = etree.SubElement(root, f"{{{RSM}}}ExchangedDocument")
    _ram(head, "ID", doc.number)
    _ram(head, "TypeCode", doc.kind.value)
    _date(head, "IssueDateTime", doc.issue_date)
    for note in doc.notes:
        _ram(_ram(head, "IncludedNote"), "Content", note)
    tx = etree.SubElement(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    _lines(tx, doc)
    _agreement(tx, doc)
    delivery = _ram(tx, "ApplicableHeaderTradeDelivery")
    if doc.buyer.tax.category is TaxCategory.INTRA_COMMUNITY:  # BR-IC-12: deliver-to country
        ship_to = _ram(_ram(delivery, "ShipToTradeParty"), "PostalTradeAddress")
        _ram(ship_to, "CountryID", doc.buyer.address.country)
    _settlement(tx, doc)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _lines(tx: Element, doc: LegalDocument) -> None:
    for w in wire_lines(doc):
        item = _ram(tx, "IncludedSupplyChainTradeLineItem")
        _ram(_ram(item, "AssociatedDocumentLineDocument"), "LineID", str(w.line.line_no))
        _ram(_ram(item, "SpecifiedTradeProduct"), "Name", w.line.label)
        agreement = _ram(item, "SpecifiedLineTradeAgreement")
        _ram(_ram(agreement, "NetPriceProductTradePrice"), "ChargeAmount", number_text(w.price))
        delivery = _ram(item, "SpecifiedLineTradeDelivery")
        _ram(delivery, "BilledQuantity", number_text(w.quantity), unitCode=unit_code(w.line.unit))
        settlement = _ram(item, "SpecifiedLineTradeSettlement")
        tax = _ram(settlement, "ApplicableTradeTax")
        _ram(tax, "TypeCode", "VAT")
        _ram(tax, "CategoryCode", w.line.category.value)
        if w.line.category is not TaxCategory.OUTSIDE_SCOPE:
            _ram(tax, "RateApplicablePercent", percent_text(w.line.rate))
        summary = _ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
        _ram(summary, "LineTotalAmount", amount_text(w.net, doc.currency))


def _agreement(tx: Element, doc: LegalDocument) -> None:
    s, b = doc.seller, doc.buyer
    assert s is not None
    agreement = _ram(tx, "ApplicableHeaderTradeAgreement")
    _ram(agreement, "BuyerReference", buyer_reference(doc))
    _party(
        agreement,
        "SellerTradeParty",
        name=s.name,
        company_id=s.company_id,
        address=s.address,
        endpoint=s.peppol_endpoint,
        vat_id=s.vat_id,
    )
    _party(
        agreement,
        "BuyerTradeParty",
        name=b.name,
        company_id="",
        address=b.address,
        endpoint=b.tax.peppol_endpoint,
        vat_id=b.tax.vat_id,
    )


def _settlement(tx: Element, doc: LegalDocument) -> None:
    s = doc.seller
    assert s is not None
    cur = doc.currency
    settle = _ram(tx, "ApplicableHeaderTradeSettlement")
    _ram(settle, "PaymentReference", doc.payment_reference)
    _ram(settle, "InvoiceCurrencyCode", cur)
    means = _ram(settle, "SpecifiedTradeSettlementPaymentMeans")
    _ram(means, "TypeCode", SEPA_CREDIT_TRANSFER)
    _ram(_ram(means, "PayeePartyCreditorFinancialAccount"), "IBANID", s.iban)
    if s.bic:
        _ram(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", s.bic)
    for g in doc.vat:
        tax = _ram(settle, "ApplicableTradeTax")
        _ram(tax, "CalculatedAmount", amount_text(signed(doc, g.tax), cur))
        _ram(tax, "TypeCode", "VAT")
        if g.exemption_reason:
            _ram(tax, "ExemptionReason", g.exemption_reason)
        _ram(tax, "BasisAmount", amount_text(signed(doc, g.taxable), cur))
        _ram(tax, "CategoryCode", g.category.value)
        if g.exemption_code:
            _ram(tax, "ExemptionReasonCode", g.exemption_code)
        if g.category is not TaxCategory.OUTSIDE_SCOPE:
            _ram(tax, "RateApplicablePercent", percent_text(g.rate))
    period = _ram(settle, "BillingSpecifiedPeriod")
    _date(period, "StartDateTime", doc.supply_first)
    _date(period, "EndDateTime", doc.supply_last)
    if doc.kind is DocumentKind.INVOICE:
        terms = _ram(settle, "SpecifiedTradePaymentTerms")
        _ram(terms, "Description", f"{s.payment_terms_days} days net")
        if doc.due_date is not None:
            _date(terms, "DueDateDateTime", doc.due_date)
    total = _ram(settle, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _ram(total, "LineTotalAmount", amount_text(signed(doc, doc.net_total), cur))
    _ram(total, "TaxBasisTotalAmount", amount_text(signed(doc, doc.net_total), cur))
    _ram(total, "TaxTotalAmount", amount_text(signed(doc, doc.tax_total), cur), currencyID=cur)
    _ram(total, "GrandTotalAmount", amount_text(signed(doc, doc.total), cur))
    _ram(total, "DuePayableAmount", amount_text(signed(doc, doc.total), cur))
    if doc.corrects is not None:
        ref = _ram(settle, "InvoiceReferencedDocument")
        _ram(ref, "IssuerAssignedID", doc.corrects.number)
        if doc.corrects.issue_date is not None:
            _date(ref, "FormattedIssueDateTime", doc.corrects.issue_date, QDT)
