"""What UBL (Peppol BIS Billing 3) and CII (Factur-X EN 16931) exports share (pure): unit
codes, amount and quantity text, the sign convention of credit notes, and the check that a
document has every mandatory EN 16931 field before it is exported.

Sign convention: an invoice line may be negative (a credit for late data); its quantity is then
negative and its price positive (EN 16931 BR-27: a net price is never negative). A credit note
states positive amounts: the document type (381) says they are credited.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from collector.billing.legal import DocumentKind, LegalDocument, LegalLine
from collector.billing.money import minor_units
from collector.errors import Conflict

# UN/ECE Recommendation 20 unit codes for the units plans use; anything else is "one" (C62).
UNIT_CODES = {
    "wh": "WHR",
    "kwh": "KWH",
    "mwh": "MWH",
    "w": "WTT",
    "kw": "KWT",
    "mw": "MAW",
    "kvarh": "K3",
    "m3": "MTQ",
    "m³": "MTQ",
    "l": "LTR",
    "kg": "KGM",
    "h": "HUR",
    "hour": "HUR",
    "day": "DAY",
    "month": "MON",
    "year": "ANN",
}


def unit_code(unit: str) -> str:
    return UNIT_CODES.get(unit.strip().lower(), "C62")


def amount_text(value: Decimal, currency: str) -> str:
    """An already rounded amount with exactly the currency's decimals: ``743.00``."""
    return f"{value.quantize(Decimal(1).scaleb(-minor_units(currency))):f}"


def number_text(value: Decimal) -> str:
    """A quantity, price or percent without exponent or trailing zeros: ``2972``, ``0.25``."""
    text = f"{value.normalize():f}"
    return "0" if text in {"-0", ""} else text


def percent_text(rate: Decimal) -> str:
    return number_text(rate * 100)


@dataclass(frozen=True, slots=True)
class WireLine:
    """A line as the e-invoice states it (signs per the convention above)."""

    line: LegalLine
    quantity: Decimal
    price: Decimal
    net: Decimal


def wire_lines(doc: LegalDocument) -> tuple[WireLine, ...]:
    sign = Decimal(-1) if doc.kind is DocumentKind.CREDIT_NOTE else Decimal(1)
    out = []
    for ln in doc.lines:
        q, p, net = ln.quantity * sign, ln.unit_price, ln.net_amount * sign
        if p < 0:
            q, p = -q, -p
        out.append(WireLine(ln, q, p, net))
    return tuple(out)


def signed(doc: LegalDocument, value: Decimal) -> Decimal:
    """A document total as stated on the wire (credit notes state positive amounts)."""
    return -value if doc.kind is DocumentKind.CREDIT_NOTE else value


def require_exportable(doc: LegalDocument) -> None:
    """Conflict naming every missing mandatory field (EN 16931 business terms) of ``doc``."""
    missing = []
    if doc.number is None or doc.issue_date is None:
        missing.append("BT-1/BT-2 number and issue date (finalize the invoice first)")
    if doc.seller is None:
        missing.append("BG-4 seller (configure the customer's issuer)")
    if not doc.buyer.name.strip():
        missing.append("BT-44 buyer name")
    if doc.kind is DocumentKind.CREDIT_NOTE and doc.corrects is None:
        missing.append("BT-25 preceding invoice reference")
    for g in doc.vat:
        if g.category.value == "S" and g.rate <= 0:
            missing.append("BT-119 a rate above 0 for VAT category S (set the customer's category)")
    if not doc.lines:
        missing.append("BG-25 at least one line")
    if missing:
        raise Conflict(
            f"{doc.kind.name.lower()} {doc.document_id} cannot be exported: missing "
            + "; ".join(missing)
        )


def buyer_reference(doc: LegalDocument) -> str:
    """BT-10: the customer's reference, else its customer number (Peppol wants one of BT-10 and
    BT-13 on every invoice)."""
    return doc.buyer.tax.buyer_reference or f"customer {doc.buyer.customer_id}"
