"""Billing value objects (frozen, validated; no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from collector.billing.money import minor_units
from collector.billing.numbering import validate_prefix
from collector.billing.parties import BuyerTax
from collector.billing.periods import zone
from collector.errors import ValidationFailed

LANGUAGES = frozenset({"en", "nl", "de", "fr"})


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValidationFailed(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    postal_code: str = ""
    line2: str = ""

    def __post_init__(self) -> None:
        if not self.line1.strip() or not self.city.strip():
            raise ValidationFailed("address needs line1 and city")
        if len(self.country) != 2 or not self.country.isalpha() or not self.country.isupper():
            raise ValidationFailed(
                f"country must be ISO 3166 alpha-2 like 'NL', got {self.country!r}"
            )

    def to_json(self) -> dict[str, str]:
        return {
            "line1": self.line1,
            "line2": self.line2,
            "postal_code": self.postal_code,
            "city": self.city,
            "country": self.country,
        }

    def lines(self) -> list[str]:
        out = [self.line1]
        if self.line2:
            out.append(self.line2)
        out.append(f"{self.postal_code} {self.city}".strip())
        out.append(self.country)
        return out


@dataclass(frozen=True, slots=True)
class CustomerSpec:
    """What staff provide to create or replace a customer."""

    name: str
    address: Address
    currency: str
    time_zone: str
    tax_rate: Decimal
    language: str = "en"
    issuer: str = "default"
    invoice_prefix: str = "INV"
    anchor_day: int = 1  # 1 = calendar months; 2..31 = anniversary
    tax: BuyerTax = field(default_factory=BuyerTax)  # VAT id, VAT category, Peppol endpoint

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationFailed("customer name must not be empty")
        minor_units(self.currency)
        zone(self.time_zone)
        if not Decimal(0) <= self.tax_rate < Decimal(1):
            raise ValidationFailed(f"tax_rate must be in [0, 1), got {self.tax_rate}")
        if self.language not in LANGUAGES:
            raise ValidationFailed(f"language must be one of {sorted(LANGUAGES)}")
        if not self.issuer.strip():
            raise ValidationFailed("issuer must not be empty")
        validate_prefix(self.invoice_prefix)
        if not 1 <= self.anchor_day <= 31:
            raise ValidationFailed("anchor_day must be 1..31")
        if self.tax_rate > 0 or self.tax.category.value != "S":
            self.tax.check_rate(self.tax_rate)


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: int
    spec: CustomerSpec
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Plan:
    plan_id: int
    code: str
    name: str
    currency: str
    latest_version: int


@dataclass(frozen=True, slots=True)
class PlanVersion:
    """An immutable version of a plan; ``document`` is the plan as stored (JSON)."""

    plan_version_id: int
    plan_id: int
    version: int
    document: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Subscription:
    """A meter (``series``) billed to a customer on a plan version in ``[valid_from, valid_to)``."""

    subscription_id: int
    customer_id: int
    series_id: int
    plan_version_id: int
    valid_from: datetime
    valid_to: datetime | None

    def __post_init__(self) -> None:
        _require_aware("valid_from", self.valid_from)
        _require_aware("valid_to", self.valid_to)
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValidationFailed("subscription must end after it starts")


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    FINAL = "final"


class LineKind(StrEnum):
    USAGE = "usage"  # energy/volume charges (per tier, per TOU period)
    DEMAND = "demand"  # peak-interval charges
    FIXED = "fixed"  # standing/subscription fees, prorated by days
    ADJUSTMENT = "adjustment"  # late data after finalize raising the amount
    CREDIT = "credit"  # late data after finalize lowering the amount (credit note line)


@dataclass(frozen=True, slots=True)
class Lineage:
    """Why a line exists: which meters, which intervals, how many readings, which plan version."""

    series_ids: tuple[int, ...]
    subscription_ids: tuple[int, ...]
    interval_from: datetime | None
    interval_to: datetime | None
    interval_count: int
    reading_count: int
    estimated_quantity: Decimal
    plan_version_id: int | None
    corrects_invoice_id: int | None = None
    corrects_invoice_number: str | None = None
    corrected_period: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "series_ids": list(self.series_ids),
            "subscription_ids": list(self.subscription_ids),
            "interval_from": self.interval_from.isoformat() if self.interval_from else None,
            "interval_to": self.interval_to.isoformat() if self.interval_to else None,
            "interval_count": self.interval_count,
            "reading_count": self.reading_count,
            "estimated_quantity": str(self.estimated_quantity),
            "plan_version_id": self.plan_version_id,
            "corrects_invoice_id": self.corrects_invoice_id,
            "corrects_invoice_number": self.corrects_invoice_number,
            "corrected_period": self.corrected_period,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Lineage:
        def ts(v: Any) -> datetime | None:
            return datetime.fromisoformat(v) if v else None

        return cls(
            series_ids=tuple(int(x) for x in doc.get("series_ids", ())),
            subscription_ids=tuple(int(x) for x in doc.get("subscription_ids", ())),
            interval_from=ts(doc.get("interval_from")),
            interval_to=ts(doc.get("interval_to")),
            interval_count=int(doc.get("interval_count", 0)),
            reading_count=int(doc.get("reading_count", 0)),
            estimated_quantity=Decimal(str(doc.get("estimated_quantity", "0"))),
            plan_version_id=doc.get("plan_version_id"),
            corrects_invoice_id=doc.get("corrects_invoice_id"),
            corrects_invoice_number=doc.get("corrects_invoice_number"),
            corrected_period=doc.get("corrected_period"),
        )


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One invoice line; ``amount`` is ``amount_unrounded`` rounded once (see ``money``)."""

    line_no: int
    kind: LineKind
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    amount_unrounded: Decimal
    amount: Decimal
    lineage: Lineage
    tier: str | None = None
    tou_period: str | None = None
    estimated_share: Decimal = Decimal(0)  # estimated quantity / quantity, 0..1
    line_id: int | None = None

    @property
    def is_estimated(self) -> bool:
        return self.estimated_share > 0


@dataclass(frozen=True, slots=True)
class Invoice:
    invoice_id: int
    customer_id: int
    period: str  # PeriodKey text
    period_start: datetime
    period_end: datetime
    status: InvoiceStatus
    currency: str
    tax_rate: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    number: str | None
    issuer: str
    drafted_at: datetime
    finalized_at: datetime | None
    lines: tuple[InvoiceLine, ...] = field(default=())
    forced_reason: str | None = None  # why it was finalized inside the grace window


@dataclass(frozen=True, slots=True)
class DemandPeak:
    """The actual (un-ratcheted) peak of one demand charge of one subscription in a period, in
    the charge's billed unit (e.g. kW); final invoices' peaks feed later ratchets."""

    subscription_id: int
    series_id: int
    charge_id: str
    peak: Decimal


@dataclass(frozen=True, slots=True)
class DraftInvoice:
    """A computed draft, ready to be stored (lines numbered from 1)."""

    customer_id: int
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    tax_rate: Decimal
    subtotal: Decimal
    subtotal_unrounded: Decimal
    tax: Decimal
    total: Decimal
    issuer: str
    prefix: str
    customer_snapshot: dict[str, Any]
    lines: tuple[InvoiceLine, ...]
    peaks: tuple[DemandPeak, ...] = ()
