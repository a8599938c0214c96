"""Charge models of the ``tally.plan/v1`` format: tiers and the eight charge types.

Validation errors name the bad field below the charge (``tiers[2].to``); ``collector.rating.plan``
adds the charge's position and raises ``PlanError``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collector.rating.located import located as bad
from collector.rating.money import QUANTITY_EXPONENT
from collector.rating.schedule import Schedule
from collector.rating.units import UNITS

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
    # Kill Bill's tiered blocks: ``price`` is per started block of ``block`` units
    block: Decimal | None = None

    @field_validator("from_", "to")
    @classmethod
    def _bound(cls, v: Decimal | None) -> Decimal | None:
        return None if v is None else _quantity(v, "tier bound")

    @field_validator("block")
    @classmethod
    def _block(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and (_quantity(v, "block") == 0):
            raise ValueError("block must be positive")
        return v

    @field_validator("price", "flat_fee")
    @classmethod
    def _money(cls, v: Decimal) -> Decimal:
        return _price(v)


UPPER_BOUND_OPEN = (None, "inf", "max")  # how Stripe, Lago, Kill Bill write an open last tier


def upper_bound_tiers(data: Any) -> Any:
    """Rewrite tiers written with inclusive upper bounds (``up_to``) as ``from``/``to`` bounds.

    ``[{up_to: 5, price: 7}, {up_to: inf, price: 6.5}]`` (Stripe's notation; Lago, OpenMeter
    and Kill Bill write the same) becomes ``[{from: 0, to: 5}, {from: 5}]`` with
    ``bounds: inclusive``: a quantity equal to a bound belongs to the tier that ends there.
    """
    if not isinstance(data, dict) or not isinstance(data.get("tiers"), list | tuple):
        return data
    tiers = data["tiers"]
    marked = [isinstance(t, dict) and "up_to" in t for t in tiers]
    if not any(marked):
        return data
    for i, t in enumerate(tiers):
        if not marked[i] or "from" in t or "to" in t:
            raise bad(f"tiers[{i}]", "write every tier with 'up_to', or every tier with from/to")
    if data.get("bounds", "inclusive") != "inclusive":
        raise bad("bounds", "'up_to' tiers are inclusive upper bounds: omit 'bounds'")
    out: list[dict[str, Any]] = []
    lower: Any = 0
    for i, t in enumerate(tiers):
        up = t["up_to"]
        rest = {k: v for k, v in t.items() if k != "up_to"}
        if up in UPPER_BOUND_OPEN:
            if i + 1 < len(tiers):
                raise bad(f"tiers[{i}].up_to", "only the last tier may be open-ended")
            out.append({"from": lower, **rest})
        else:
            if i + 1 == len(tiers):
                raise bad(f"tiers[{i}].up_to", "the last tier must be open: up_to: inf")
            out.append({"from": lower, "to": up, **rest})
            lower = up
    return {**data, "tiers": out, "bounds": "inclusive"}


Bounds = Literal["half_open", "inclusive"]


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


NegativeUsage = Literal["reject", "flag"]


class Tax(_Model):
    """A percentage tax of one charge (an energy tax, a levy): ``percent`` of the charge's
    rounded amount, on its own ``tax`` line. Billing's VAT is added on top of all lines."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    percent: Decimal

    @field_validator("percent")
    @classmethod
    def _p(cls, v: Decimal) -> Decimal:
        _price(v, "percent")
        if v > 100 or decimals(v) > 6:
            raise ValueError(f"a percentage 0..100 with at most 6 decimals, got {v}")
        return v


class QuantityRounding(_Model):
    """Round a charge's quantity to ``precision`` decimals (``ceil``, ``floor`` or ``round``:
    half away from zero) at ``step``: on the meter total before unit conversion, on the
    billed total after conversion (default), or on the chargeable rest after the allowance."""

    mode: Literal["ceil", "floor", "round"]
    precision: int = Field(default=0, ge=0, le=QUANTITY_EXPONENT)
    step: Literal["before_conversion", "after_conversion", "after_allowance"] = "after_conversion"


class _UsageCharge(_Charge):
    meter: str = "default"
    unit: str
    multiplier: Decimal = Decimal(1)
    # negative readings (export, corrections, bad data) are never clamped to 0 silently:
    # ``reject`` fails the rating run; ``flag`` bills without them and shows their total on a
    # ``negative`` line (price 0) for staff review
    negative_usage: NegativeUsage = "reject"
    rounding: QuantityRounding | None = None
    # a spend cap: the charge's rounded lines never total more than this per period
    maximum: Decimal | None = None
    taxes: tuple[Tax, ...] = ()  # several taxes per charge, each on the capped amount

    @field_validator("maximum")
    @classmethod
    def _maximum(cls, v: Decimal | None) -> Decimal | None:
        return None if v is None else _price(v, "maximum")

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
    """Each tier prices the units inside it; each tier reached adds its flat fee.

    The first tier's flat fee is billed at zero usage too unless ``flat_fee_at_zero`` is false.
    ``bounds`` does not change a graduated bill (a tier holds the same units either way).
    """

    type: Literal["graduated"]
    tiers: tuple[Tier, ...]
    bounds: Bounds = "half_open"
    flat_fee_at_zero: bool = True

    @model_validator(mode="before")
    @classmethod
    def _up_to(cls, data: Any) -> Any:
        return upper_bound_tiers(data)

    @model_validator(mode="after")
    def _t(self) -> Graduated:
        check_tiers(self.tiers)
        return self


class Volume(_Allowance):
    """All chargeable units at the price of the tier the total falls in, plus its flat fee.

    ``bounds: half_open``: the total falls in the tier with ``from <= q < to``; ``inclusive``
    (tiers written with ``up_to``): ``from < q <= to`` (0 is in the first tier). The flat fee
    of the first tier is billed at zero usage unless ``flat_fee_at_zero`` is false.
    """

    type: Literal["volume"]
    tiers: tuple[Tier, ...]
    bounds: Bounds = "half_open"
    flat_fee_at_zero: bool = True

    @model_validator(mode="before")
    @classmethod
    def _up_to(cls, data: Any) -> Any:
        return upper_bound_tiers(data)

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
    bounds: Bounds = "half_open"
    flat_fee_at_zero: bool = True

    @model_validator(mode="before")
    @classmethod
    def _up_to(cls, data: Any) -> Any:
        return upper_bound_tiers(data)

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
    # ``period``: each period's tiers apply to that period's total (default). ``month_total``
    # (OpenEI URDB / NREL SAM): the tiers apply to the total of all periods, and each tier's
    # units are allocated to the periods pro rata to their usage, priced at the period's rate
    tier_basis: Literal["period", "month_total"] = "period"

    @model_validator(mode="after")
    def _basis(self) -> TimeOfUse:
        if self.tier_basis == "period":
            return self
        bounds: list[Decimal | None] | None = None
        for name, pp in self.periods.items():
            if pp.tiers is None:
                raise bad(f"periods.{name}", "month_total tiers: every period needs 'tiers'")
            mine = [t.to for t in pp.tiers]
            if bounds is None:
                bounds = mine
            elif mine != bounds:
                raise bad(f"periods.{name}.tiers", "month_total tiers: same bounds in every period")
            for i, t in enumerate(pp.tiers):
                if t.flat_fee or t.block is not None:
                    raise bad(
                        f"periods.{name}.tiers[{i}]", "month_total tiers: no flat fee or block"
                    )
        return self


PeriodPrices = Decimal | dict[str, Decimal]


class NetMetering(_UsageCharge):
    """Import billed, export credited: two registers (``meter`` = import, ``export_meter``).

    Prices are flat or per TOU period (``{peak: "0.32", offpeak: "0.18"}``). ``mode: gross``
    bills all import at the import price and credits all export at the export price.
    ``mode: net`` nets export against import within each TOU period of the billing period:
    the rest of the import is billed, excess export is credited, and the netted quantity is
    shown on a ``netted`` line (price 0) so that no credit disappears unseen.
    """

    type: Literal["net_metering"]
    export_meter: str = "export"
    mode: Literal["net", "gross"] = "gross"
    import_price: PeriodPrices
    export_price: PeriodPrices

    @model_validator(mode="after")
    def _prices(self) -> NetMetering:
        for name in ("import_price", "export_price"):
            value = getattr(self, name)
            items = value.items() if isinstance(value, dict) else [("", value)]
            for period, price in items:
                try:
                    _price(price)
                except ValueError as exc:
                    raise bad(f"{name}{'.' + period if period else ''}", str(exc)) from None
        if isinstance(self.import_price, dict) != isinstance(self.export_price, dict):
            raise bad("export_price", "give both prices flat, or both per TOU period")
        if self.rounding is not None:
            raise bad("rounding", "net metering bills registers as measured")
        if self.export_meter == self.meter:
            raise bad("export_meter", "import and export need two registers (meters)")
        if UNITS[self.unit].dimension != "energy":
            raise bad("unit", f"net metering bills energy, not {self.unit}")
        return self

    def period_names(self) -> tuple[str, ...]:
        """The TOU periods priced (empty: flat prices)."""
        return tuple(self.import_price) if isinstance(self.import_price, dict) else ()


class Ratchet(_Model):
    """Billed demand >= ``percent``% of the highest demand of the previous ``months`` months."""

    percent: Decimal = Field(gt=0, le=100)
    months: int = Field(ge=1, le=36)


class Demand(_UsageCharge):
    """Highest ``window_minutes`` average demand in the period × ``price`` (and per period).

    ``fixed`` windows are clock-aligned blocks; ``rolling`` windows start at every reading.
    """

    type: Literal["demand"]
    window_minutes: int = 15
    window_type: Literal["fixed", "rolling"] = "fixed"
    price: Decimal | None = None
    period_prices: dict[str, Decimal] = Field(default_factory=dict)
    ratchet: Ratchet | None = None
    minimum: Decimal = Decimal(0)  # minimum chargeable demand (flat price), after the ratchet
    # ``period``: prices per billing period (``prorate``: × active days / cycle days);
    # ``day``: prices per kW per day, × the period's billed days
    price_per: Literal["period", "day"] = "period"
    prorate: bool = False
    # the demand's own TOU schedule (URDB tariffs have one for energy and one for demand);
    # ``period_prices`` then name its periods. Omitted: the plan's schedule
    schedule: Schedule | None = None

    @field_validator("minimum")
    @classmethod
    def _minimum(cls, v: Decimal) -> Decimal:
        return _quantity(v, "minimum")

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
        if self.minimum and self.price is None:
            raise bad("minimum", "a minimum chargeable demand needs the flat 'price'")
        if self.prorate and self.price_per == "day":
            raise bad("prorate", "a price per day is already proportional to the days billed")
        if self.rounding is not None:
            raise bad("rounding", "a demand charge bills its peak as measured: no rounding")
        if UNITS[self.unit].dimension != "power":
            raise bad("unit", f"a demand charge is billed in a power unit (kW), not {self.unit}")
        return self


class Percentage(_Charge):
    """A percentage of transaction amounts (Lago's percentage model).

    Each reading of ``meter`` is one transaction, its value an amount in the plan currency.
    Each charged transaction pays ``rate``% of its amount plus ``fixed_fee``, kept within
    ``[min_per_transaction, max_per_transaction]``. The first transactions are free while both
    allowances given last: ``free_transactions`` (a count) and ``free_amount`` (the running
    total of amounts); the transaction that crosses ``free_amount`` pays on its excess.
    """

    type: Literal["percentage"]
    meter: str = "default"
    rate: Decimal
    fixed_fee: Decimal = Decimal(0)
    min_per_transaction: Decimal | None = None
    max_per_transaction: Decimal | None = None
    free_transactions: int | None = Field(default=None, ge=0)
    free_amount: Decimal | None = None
    negative_usage: NegativeUsage = "reject"
    maximum: Decimal | None = None
    taxes: tuple[Tax, ...] = ()

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: Decimal) -> Decimal:
        _price(v, "rate")
        if v > 100 or decimals(v) > 8:
            raise ValueError(f"rate is a percentage 0..100 with at most 8 decimals, got {v}")
        return v

    @field_validator("fixed_fee", "min_per_transaction", "max_per_transaction", "maximum")
    @classmethod
    def _amounts(cls, v: Decimal | None) -> Decimal | None:
        return None if v is None else _price(v, "amount")

    @field_validator("free_amount")
    @classmethod
    def _free(cls, v: Decimal | None) -> Decimal | None:
        return None if v is None else _quantity(v, "free_amount")

    @model_validator(mode="after")
    def _bounds(self) -> Percentage:
        lo, hi = self.min_per_transaction, self.max_per_transaction
        if lo is not None and hi is not None and lo > hi:
            raise bad("max_per_transaction", f"below min_per_transaction ({hi} < {lo})")
        return self


class Discount(_Charge):
    """A discount (a coupon): ``percent`` off, or a fixed ``amount`` off (never below zero).

    On the charges named in ``applies_to`` (their rounded lines), or on every other line of
    the invoice when ``applies_to`` is empty. Valid for the periods that start in
    ``[valid_from, valid_until)`` (local midnights of the plan's time zone; either open).
    Discounts do not compound: each is computed on lines before any discount.
    """

    type: Literal["discount"]
    percent: Decimal | None = None
    amount: Decimal | None = None
    applies_to: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _one(self) -> Discount:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("give exactly one of 'percent' or 'amount'")
        if self.percent is not None:
            _price(self.percent, "percent")
            if self.percent > 100 or decimals(self.percent) > 6:
                raise bad("percent", f"a percentage 0..100 with at most 6 decimals: {self.percent}")
        if self.amount is not None:
            _price(self.amount, "amount")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise bad("valid_until", "must be after valid_from")
        return self


class ProgressiveBilling(_Charge):
    """Interim invoices when a period's usage amount crosses a threshold (Lago's progressive
    billing); the period's final invoice deducts what interim invoices billed.

    ``collector.rating.progressive.interim_due`` decides when an interim invoice is due; the
    engine adds the deduction line from ``Subscriptions.billed_in_advance``.
    """

    type: Literal["progressive_billing"]
    thresholds: tuple[Decimal, ...] = Field(min_length=1)

    @field_validator("thresholds")
    @classmethod
    def _t(cls, v: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        for i, t in enumerate(v):
            try:
                _price(t, "threshold")
            except ValueError as exc:
                raise bad(f"[{i}]", str(exc)) from None
            if t == 0 or (i and t <= v[i - 1]):
                raise bad(f"[{i}]", "thresholds must be positive and ascending")
        return v


class MinimumCommitment(_Charge):
    """A true-up line when the usage charges of the period total less than ``amount``.

    ``includes_recurring``: recurring fees count toward the minimum (Lago's rule).
    ``prorate``: a partial period commits to ``amount × active days / cycle days``.
    """

    type: Literal["minimum_commitment"]
    amount: Decimal
    includes_recurring: bool = False
    prorate: bool = False

    @field_validator("amount")
    @classmethod
    def _a(cls, v: Decimal) -> Decimal:
        return _price(v, "amount")


class Recurring(_Charge):
    """A flat fee per billing period, prorated by days for partial periods if ``prorate``.

    ``pay_in_advance``: billed at the start of the period on an invoice of its own (Lago's
    ``pay_in_advance``; ``collector.billing.advance_run``) and left off the period's final
    invoice. The rating engine rates it the same either way; billing decides where it goes.
    """

    type: Literal["recurring"]
    amount: Decimal
    prorate: bool = True
    pay_in_advance: bool = False

    @field_validator("amount")
    @classmethod
    def _a(cls, v: Decimal) -> Decimal:
        return _price(v, "amount")


Charge = Annotated[
    PerUnit
    | Graduated
    | Volume
    | Package
    | TimeOfUse
    | Demand
    | NetMetering
    | Percentage
    | MinimumCommitment
    | Recurring
    | Discount
    | ProgressiveBilling,
    Field(discriminator="type"),
]
UsageCharge = PerUnit | Graduated | Volume | Package | TimeOfUse | Demand | NetMetering
MeteredCharge = UsageCharge | Percentage  # every charge that reads a meter
