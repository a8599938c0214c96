"""The price-plan format ``tally.plan/v1``: a validated, immutable model of a plan file.

A plan is YAML or JSON (see ``docs/pricing.md`` for the reference and worked examples)::

    format: tally.plan/v1
    id: business-energy
    version: 3
    currency: EUR
    time_zone: Europe/Berlin
    charges:
      - {type: per_unit, id: energy, unit: kWh, price: "0.25"}

Every invalid plan raises :class:`collector.errors.PlanError` whose ``path`` names the bad field
(``charges[1].tiers[2].to``). Boundary convention: tiers are half-open ``[from, to)`` in billing
units; the first starts at 0, each starts where the previous ends, the last is open (``to``
omitted). Quantities and bounds have a resolution of 1e-6 unit; prices at most 10 decimals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collector.errors import PlanError
from collector.rating.currencies import MINOR_UNIT_EXPONENTS
from collector.rating.located import located as bad
from collector.rating.located import split_located
from collector.rating.money import QUANTITY_EXPONENT
from collector.rating.schedule import Schedule
from collector.rating.units import UNITS

FORMAT = "tally.plan/v1"
MAX_PRICE_DECIMALS = 10


def decimals(value: Decimal) -> int:
    """Number of decimals ``value`` needs (``2.50`` → 1, ``100`` → 0)."""
    exp = value.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _price(value: Decimal, what: str = "price") -> Decimal:
    if not value.is_finite() or value < 0:
        raise ValueError(f"{what} must be a non-negative number, got {value}")
    if decimals(value) > MAX_PRICE_DECIMALS:
        raise ValueError(f"{what} has more than {MAX_PRICE_DECIMALS} decimals: {value}")
    return value


def _quantity(value: Decimal, what: str) -> Decimal:
    if not value.is_finite() or value < 0:
        raise ValueError(f"{what} must be a non-negative number, got {value}")
    if decimals(value) > QUANTITY_EXPONENT:
        raise ValueError(f"{what} has more than {QUANTITY_EXPONENT} decimals: {value}")
    return value


class Tier(_Model):
    """Units in ``[from, to)`` (``to`` None: unbounded) at ``price`` each, plus ``flat_fee``."""

    from_: Decimal = Field(alias="from")
    to: Decimal | None = None
    price: Decimal
    flat_fee: Decimal = Decimal(0)

    @field_validator("from_", "to")
    @classmethod
    def _bound(cls, v: Decimal | None) -> Decimal | None:
        return None if v is None else _quantity(v, "tier bound")

    @field_validator("price", "flat_fee")
    @classmethod
    def _money(cls, v: Decimal) -> Decimal:
        return _price(v)


def check_tiers(tiers: tuple[Tier, ...]) -> None:
    """Tiers must start at 0, ascend, leave no gap, not overlap, and end open."""
    if not tiers:
        raise bad("tiers", "at least one tier is required")
    if tiers[0].from_ != 0:
        raise bad("tiers[0].from", f"the first tier must start at 0, not {tiers[0].from_}")
    for i, tier in enumerate(tiers):
        if tier.to is not None and tier.to <= tier.from_:
            raise bad(f"tiers[{i}].to", f"bounds must ascend: to {tier.to} <= from {tier.from_}")
        if i + 1 < len(tiers):
            if tier.to is None:
                raise bad(f"tiers[{i}].to", "only the last tier may be open-ended")
            nxt = tiers[i + 1].from_
            if nxt < tier.to:
                raise bad(f"tiers[{i + 1}].from", f"tiers overlap: {nxt} < previous to {tier.to}")
            if nxt > tier.to:
                raise bad(f"tiers[{i + 1}].from", f"missing tier: [{tier.to}, {nxt}) not covered")
    if tiers[-1].to is not None:
        raise bad(
            f"tiers[{len(tiers) - 1}].to",
            f"missing tier: quantities from {tiers[-1].to} up are not covered (omit 'to')",
        )


class _Charge(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = ""


class _UsageCharge(_Charge):
    meter: str = "default"
    unit: str
    multiplier: Decimal = Decimal(1)

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        if v not in UNITS:
            raise ValueError(f"unknown unit {v!r} (known: {', '.join(UNITS)})")
        return v

    @field_validator("multiplier")
    @classmethod
    def _multiplier(cls, v: Decimal) -> Decimal:
        if not v.is_finite() or v <= 0 or decimals(v) > MAX_PRICE_DECIMALS:
            raise ValueError(f"multiplier must be a positive number, got {v}")
        return v


class _Allowance(_UsageCharge):
    included: Decimal = Decimal(0)

    @field_validator("included")
    @classmethod
    def _included(cls, v: Decimal) -> Decimal:
        return _quantity(v, "included")


class PerUnit(_Allowance):
    """Every chargeable unit at ``price``."""

    type: Literal["per_unit"]
    price: Decimal

    @field_validator("price")
    @classmethod
    def _p(cls, v: Decimal) -> Decimal:
        return _price(v)


class Graduated(_Allowance):
    """Each tier prices the units inside it; each tier reached adds its flat fee."""

    type: Literal["graduated"]
    tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _t(self) -> Graduated:
        check_tiers(self.tiers)
        return self


class Volume(_Allowance):
    """All chargeable units at the price of the tier the total falls in, plus its flat fee."""

    type: Literal["volume"]
    tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _t(self) -> Volume:
        check_tiers(self.tiers)
        return self


class Package(_Allowance):
    """``price`` per started block of ``size`` units after the included units."""

    type: Literal["package"]
    size: Decimal
    price: Decimal

    @field_validator("size")
    @classmethod
    def _s(cls, v: Decimal) -> Decimal:
        _quantity(v, "size")
        if v == 0:
            raise ValueError("size must be positive")
        return v

    @field_validator("price")
    @classmethod
    def _p(cls, v: Decimal) -> Decimal:
        return _price(v)


class PeriodPrice(_Model):
    """The price of one time-of-use period: flat ``price`` or graduated ``tiers``."""

    price: Decimal | None = None
    tiers: tuple[Tier, ...] | None = None

    @model_validator(mode="after")
    def _one(self) -> PeriodPrice:
        if (self.price is None) == (self.tiers is None):
            raise ValueError("give exactly one of 'price' or 'tiers'")
        if self.price is not None:
            _price(self.price)
        if self.tiers is not None:
            check_tiers(self.tiers)
        return self


class TimeOfUse(_UsageCharge):
    """Usage priced by the schedule period its interval starts in (plan ``schedule``)."""

    type: Literal["time_of_use"]
    periods: dict[str, PeriodPrice]


class Ratchet(_Model):
    """Billed demand >= ``percent``% of the highest demand of the previous ``months`` months."""

    percent: Decimal = Field(gt=0, le=100)
    months: int = Field(ge=1, le=36)


class Demand(_UsageCharge):
    """Highest ``window_minutes`` average demand in the period × ``price`` (and per period)."""

    type: Literal["demand"]
    window_minutes: int = 15
    price: Decimal | None = None
    period_prices: dict[str, Decimal] = Field(default_factory=dict)
    ratchet: Ratchet | None = None

    @field_validator("window_minutes")
    @classmethod
    def _w(cls, v: int) -> int:
        if v <= 0 or 60 % v != 0:
            raise ValueError(f"window_minutes must divide 60 (5, 10, 15, 20, 30, 60), got {v}")
        return v

    @model_validator(mode="after")
    def _p(self) -> Demand:
        if self.price is None and not self.period_prices:
            raise ValueError("give 'price' and/or 'period_prices'")
        if self.price is not None:
            _price(self.price)
        for name, p in self.period_prices.items():
            try:
                _price(p)
            except ValueError as exc:
                raise bad(f"period_prices.{name}", str(exc)) from None
        if self.ratchet is not None and self.price is None:
            raise bad("ratchet", "a ratchet needs the flat 'price'")
        if UNITS[self.unit].dimension != "power":
            raise bad("unit", f"a demand charge is billed in a power unit (kW), not {self.unit}")
        return self


class MinimumCommitment(_Charge):
    """A true-up line when the usage charges of the period total less than ``amount``."""

    type: Literal["minimum_commitment"]
    amount: Decimal

    @field_validator("amount")
    @classmethod
    def _a(cls, v: Decimal) -> Decimal:
        return _price(v, "amount")


class Recurring(_Charge):
    """A flat fee per billing period, prorated by days for partial periods if ``prorate``."""

    type: Literal["recurring"]
    amount: Decimal
    prorate: bool = True

    @field_validator("amount")
    @classmethod
    def _a(cls, v: Decimal) -> Decimal:
        return _price(v, "amount")


Charge = Annotated[
    PerUnit | Graduated | Volume | Package | TimeOfUse | Demand | MinimumCommitment | Recurring,
    Field(discriminator="type"),
]
UsageCharge = PerUnit | Graduated | Volume | Package | TimeOfUse | Demand


class Plan(_Model):
    """A versioned price plan: currency, optional TOU schedule, and its charges in order."""

    format: Literal["tally.plan/v1"]
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    version: int = Field(ge=1)
    name: str = ""
    currency: str
    time_zone: str = "UTC"
    schedule: Schedule | None = None
    holidays: tuple[date, ...] = ()
    charges: tuple[Charge, ...] = Field(min_length=1)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if v not in MINOR_UNIT_EXPONENTS:
            raise ValueError(f"unknown currency {v!r} (not an ISO 4217 code in the table)")
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _cross(self) -> Plan:
        exp = MINOR_UNIT_EXPONENTS[self.currency]
        seen: set[str] = set()
        minimums = 0
        for i, ch in enumerate(self.charges):
            if ch.id in seen:
                raise bad(f"charges[{i}].id", f"duplicate charge id {ch.id!r}")
            seen.add(ch.id)
            if isinstance(ch, MinimumCommitment | Recurring) and decimals(ch.amount) > exp:
                raise bad(
                    f"charges[{i}].amount",
                    f"{ch.amount} is finer than the {self.currency} minor unit",
                )
            if isinstance(ch, MinimumCommitment):
                minimums += 1
                if minimums > 1:
                    raise bad(f"charges[{i}]", "at most one minimum_commitment")
            self._check_periods(i, ch)
        return self

    def _check_periods(self, i: int, ch: object) -> None:
        names = set(self.schedule.period_names()) if self.schedule else set()
        if isinstance(ch, TimeOfUse):
            if self.schedule is None:
                raise bad(f"charges[{i}]", "a time_of_use charge needs the plan 'schedule'")
            for name in ch.periods:
                if name not in names:
                    raise bad(
                        f"charges[{i}].periods.{name}", f"period {name!r} is not in the schedule"
                    )
            for name in sorted(names - set(ch.periods)):
                raise bad(f"charges[{i}].periods", f"missing price for schedule period {name!r}")
        if isinstance(ch, Demand) and ch.period_prices:
            if self.schedule is None:
                raise bad(f"charges[{i}]", "'period_prices' need the plan 'schedule'")
            for name in ch.period_prices:
                if name not in names:
                    raise bad(
                        f"charges[{i}].period_prices.{name}",
                        f"period {name!r} is not in the schedule",
                    )

    def period_names(self) -> tuple[str, ...]:
        """Schedule period names in index order (sorted); empty without a schedule."""
        return self.schedule.period_names() if self.schedule else ()

    def charge(self, charge_id: str) -> Charge:
        """The charge with id ``charge_id`` (``KeyError`` if absent)."""
        for ch in self.charges:
            if ch.id == charge_id:
                return ch
        raise KeyError(charge_id)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {
            "per_unit",
            "graduated",
            "volume",
            "package",
            "time_of_use",
            "demand",
            "minimum_commitment",
            "recurring",
            "function-after",
        } or part.startswith(("function-", "list[", "dict[")):
            continue
        else:
            out += f".{'from' if part == 'from_' else part}" if out else str(part)
    return out


def parse_plan(data: Mapping[str, Any]) -> Plan:
    """Validate a plan given as a mapping (parsed YAML/JSON); ``PlanError`` if invalid."""
    if not isinstance(data, Mapping):
        raise PlanError("a plan must be a mapping")
    if data.get("format") != FORMAT:
        raise PlanError(
            f"unsupported plan format {data.get('format')!r}, expected {FORMAT!r}", path="format"
        )
    try:
        return Plan.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _path(tuple(err["loc"]))
        msg = str(err["msg"])
        msg = msg.removeprefix("Value error, ")
        sub, msg = split_located(msg)
        if sub:
            path = f"{path}.{sub}" if path else sub
        raise PlanError(msg, path=path) from None


def plan_from_text(text: str) -> Plan:
    """Parse a YAML or JSON plan document."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError(f"not valid YAML/JSON: {exc}") from exc
    return parse_plan(data)


def load_plan(path: str | Path) -> Plan:
    """Read and validate the plan file at ``path`` (``.yaml``, ``.yml`` or ``.json``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read plan file {p}: {exc}") from exc
    if p.suffix == ".json":
        try:
            return parse_plan(json.loads(text))
        except json.JSONDecodeError as exc:
            raise PlanError(f"not valid JSON: {exc}") from exc
    return plan_from_text(text)
