"""The parties of an invoice beyond name and address (pure, frozen, validated):

* ``Issuer``: the seller, a legal entity that sends invoices (several are possible; a customer
  names its issuer by ``code``): legal name, address, VAT id, company registration, IBAN/BIC,
  payment terms, Peppol endpoint.
* ``BuyerTax``: the customer's VAT facts: business or consumer, VAT id, the VAT category of
  what it is sold (EN 16931 code list UNCL5305: S, Z, E, AE, K, G, O), the exemption reason,
  its Peppol endpoint and buyer reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from collector.errors import ValidationFailed

if TYPE_CHECKING:  # model imports this module; Address is only needed at run time in _address
    from collector.billing.model import Address

_VAT_RE = re.compile(r"^[A-Z]{2}[A-Z0-9+*.]{2,13}$")
_IBAN_RE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_BIC_RE = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_ENDPOINT_RE = re.compile(r"^[0-9]{4}:[A-Za-z0-9.:_-]{1,50}$")
_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class TaxCategory(StrEnum):
    """VAT category codes of EN 16931 (UNCL5305) that Tally issues."""

    STANDARD = "S"  # standard rate (rate > 0)
    ZERO = "Z"  # zero rated goods
    EXEMPT = "E"  # exempt from VAT (reason required)
    REVERSE_CHARGE = "AE"  # VAT reverse charge: the buyer accounts for the VAT
    INTRA_COMMUNITY = "K"  # intra-community supply (EEA), exempt
    EXPORT = "G"  # export outside the EU, free
    OUTSIDE_SCOPE = "O"  # services outside the scope of VAT


# Default exemption reason code (VATEX code list) per category, where there is one.
VATEX: Mapping[TaxCategory, str] = {
    TaxCategory.REVERSE_CHARGE: "VATEX-EU-AE",
    TaxCategory.INTRA_COMMUNITY: "VATEX-EU-IC",
    TaxCategory.EXPORT: "VATEX-EU-G",
    TaxCategory.OUTSIDE_SCOPE: "VATEX-EU-O",
}


def check_vat_id(vat_id: str, what: str) -> str:
    if not _VAT_RE.match(vat_id):
        raise ValidationFailed(
            f"{what} must be a VAT id with its country prefix like 'NL123456789B01', got {vat_id!r}"
        )
    return vat_id


def check_iban(iban: str) -> str:
    """An IBAN without spaces whose ISO 13616 mod-97 check digits are right."""
    if not _IBAN_RE.match(iban):
        raise ValidationFailed(f"IBAN must be like 'NL91ABNA0417164300', got {iban!r}")
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise ValidationFailed(f"IBAN {iban!r} has wrong check digits")
    return iban


def check_endpoint(endpoint: str, what: str) -> str:
    """A Peppol participant id ``scheme:id`` (ISO 6523 ICD / EAS code, e.g. ``0106:12345678``)."""
    if endpoint and not _ENDPOINT_RE.match(endpoint):
        raise ValidationFailed(f"{what} must be 'scheme:id' like '0106:12345678', got {endpoint!r}")
    return endpoint


def _address(doc: Mapping[str, Any]) -> Address:
    from collector.billing.model import Address  # noqa: PLC0415 (model imports this module)

    return Address(
        line1=str(doc.get("line1", "")),
        line2=str(doc.get("line2", "")),
        postal_code=str(doc.get("postal_code", "")),
        city=str(doc.get("city", "")),
        country=str(doc.get("country", "")),
    )


@dataclass(frozen=True, slots=True)
class Issuer:
    """A seller: what every invoice it sends must say about it (EU VAT directive art. 226)."""

    code: str
    name: str
    address: Address
    vat_id: str
    iban: str
    bic: str = ""
    company_id: str = ""  # registration number (e.g. the Dutch KvK number)
    payment_terms_days: int = 14
    payment_note: str = ""  # printed under the totals, e.g. late payment terms
    email: str = ""
    phone: str = ""
    peppol_endpoint: str = ""

    def __post_init__(self) -> None:
        if not _CODE_RE.match(self.code):
            raise ValidationFailed(
                "issuer code must be 1-40 lower-case letters, digits, '-' or '_',"
                f" got {self.code!r}"
            )
        if not self.name.strip():
            raise ValidationFailed("issuer name must not be empty")
        check_vat_id(self.vat_id, "issuer vat_id")
        check_iban(self.iban)
        if self.bic and not _BIC_RE.match(self.bic):
            raise ValidationFailed(
                f"BIC must be 8 or 11 characters like 'ABNANL2A', got {self.bic!r}"
            )
        if not 0 <= self.payment_terms_days <= 365:
            raise ValidationFailed("payment_terms_days must be 0..365")
        check_endpoint(self.peppol_endpoint, "issuer peppol_endpoint")

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "address": self.address.to_json(),
            "vat_id": self.vat_id,
            "iban": self.iban,
            "bic": self.bic,
            "company_id": self.company_id,
            "payment_terms_days": self.payment_terms_days,
            "payment_note": self.payment_note,
            "email": self.email,
            "phone": self.phone,
            "peppol_endpoint": self.peppol_endpoint,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Issuer:
        return cls(
            code=str(doc["code"]),
            name=str(doc["name"]),
            address=_address(doc["address"]),
            vat_id=str(doc["vat_id"]),
            iban=str(doc["iban"]),
            bic=str(doc.get("bic", "")),
            company_id=str(doc.get("company_id", "")),
            payment_terms_days=int(doc.get("payment_terms_days", 14)),
            payment_note=str(doc.get("payment_note", "")),
            email=str(doc.get("email", "")),
            phone=str(doc.get("phone", "")),
            peppol_endpoint=str(doc.get("peppol_endpoint", "")),
        )


@dataclass(frozen=True, slots=True)
class BuyerTax:
    """The customer's VAT facts. A consumer needs none of them; a business buyer's VAT id is
    printed, and is required for reverse charge (AE) and intra-community supplies (K)."""

    business: bool = False
    vat_id: str = ""
    category: TaxCategory = TaxCategory.STANDARD
    exemption_reason: str = ""  # text printed and sent as BT-120; required for E
    peppol_endpoint: str = ""
    buyer_reference: str = ""  # BT-10 (e.g. a purchase order or cost centre)
    email: str = ""

    def __post_init__(self) -> None:
        if self.vat_id:
            check_vat_id(self.vat_id, "customer vat_id")
            if not self.business:
                raise ValidationFailed("a customer with a VAT id must be a business")
        if self.category in (TaxCategory.REVERSE_CHARGE, TaxCategory.INTRA_COMMUNITY) and not (
            self.business and self.vat_id
        ):
            raise ValidationFailed(
                f"VAT category {self.category.value} needs a business customer with a VAT id"
            )
        if self.category is TaxCategory.EXEMPT and not self.exemption_reason.strip():
            raise ValidationFailed("VAT category E (exempt) needs an exemption_reason")
        check_endpoint(self.peppol_endpoint, "customer peppol_endpoint")

    def check_rate(self, rate: Decimal) -> None:
        """Category S has a rate above zero; every other category has rate 0."""
        if self.category is TaxCategory.STANDARD and rate <= 0:
            raise ValidationFailed(
                "tax_rate 0 needs a VAT category other than S (Z, E, AE, K, G or O)"
            )
        if self.category is not TaxCategory.STANDARD and rate != 0:
            raise ValidationFailed(f"VAT category {self.category.value} needs tax_rate 0")

    def to_json(self) -> dict[str, Any]:
        return {
            "business": self.business,
            "vat_id": self.vat_id,
            "category": self.category.value,
            "exemption_reason": self.exemption_reason,
            "peppol_endpoint": self.peppol_endpoint,
            "buyer_reference": self.buyer_reference,
            "email": self.email,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> BuyerTax:
        d = doc or {}
        return cls(
            business=bool(d.get("business", False)),
            vat_id=str(d.get("vat_id", "")),
            category=TaxCategory(str(d.get("category", "S"))),
            exemption_reason=str(d.get("exemption_reason", "")),
            peppol_endpoint=str(d.get("peppol_endpoint", "")),
            buyer_reference=str(d.get("buyer_reference", "")),
            email=str(d.get("email", "")),
        )
