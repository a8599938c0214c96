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
omitted); or written as inclusive upper bounds ``up_to`` (``bounds: inclusive``). Quantities
and bounds have a resolution of 1e-6 unit; prices at most 10 decimals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from collector.errors import PlanError
from collector.rating.charges import (
    Charge,
    Demand,
    Discount,
    Graduated,
    MeteredCharge,
    MinimumCommitment,
    NetMetering,
    Package,
    Percentage,
    PeriodPrice,
    PerUnit,
    ProgressiveBilling,
    Ratchet,
    Recurring,
    Tax,
    Tier,
    TimeOfUse,
    UsageCharge,
    Volume,
    _Model,
    decimals,
)
from collector.rating.currencies import MINOR_UNIT_EXPONENTS
from collector.rating.located import located as bad
from collector.rating.located import split_located
from collector.rating.schedule import Schedule

FORMAT = "tally.plan/v1"

__all__ = [
    "FORMAT",
    "Charge",
    "Demand",
    "Discount",
    "Graduated",
    "MeteredCharge",
    "MinimumCommitment",
    "NetMetering",
    "Package",
    "PerUnit",
    "Percentage",
    "PeriodPrice",
    "Plan",
    "ProgressiveBilling",
    "Ratchet",
    "Recurring",
    "Tax",
    "Tier",
    "TimeOfUse",
    "UsageCharge",
    "Volume",
    "decimals",
    "load_plan",
    "parse_plan",
    "plan_from_text",
]


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
            if isinstance(ch, Discount):
                self._check_discount(i, ch, exp)
            if isinstance(ch, MinimumCommitment | Recurring) and decimals(ch.amount) > exp:
                raise bad(
                    f"charges[{i}].amount",
                    f"{ch.amount} is finer than the {self.currency} minor unit",
                )
            cap = getattr(ch, "maximum", None)
            if cap is not None and decimals(cap) > exp:
                raise bad(
                    f"charges[{i}].maximum", f"{cap} is finer than the {self.currency} minor unit"
                )
            if isinstance(ch, ProgressiveBilling):
                for k, t in enumerate(ch.thresholds):
                    if decimals(t) > exp:
                        raise bad(
                            f"charges[{i}].thresholds[{k}]", f"{t} is finer than {self.currency}"
                        )
                if sum(isinstance(c, ProgressiveBilling) for c in self.charges) > 1:
                    raise bad(f"charges[{i}]", "at most one progressive_billing")
            if isinstance(ch, MinimumCommitment):
                minimums += 1
                if minimums > 1:
                    raise bad(f"charges[{i}]", "at most one minimum_commitment")
            self._check_periods(i, ch)
        return self

    def _check_discount(self, i: int, ch: Discount, exp: int) -> None:
        if ch.amount is not None and decimals(ch.amount) > exp:
            raise bad(
                f"charges[{i}].amount", f"{ch.amount} is finer than the {self.currency} minor unit"
            )
        ids = {c.id for c in self.charges if not isinstance(c, Discount)}
        for k, target in enumerate(ch.applies_to):
            if target not in ids:
                raise bad(f"charges[{i}].applies_to[{k}]", f"no charge {target!r} to discount")

    def _check_net_metering(self, i: int, ch: NetMetering, names: set[str]) -> None:
        if self.schedule is None:
            raise bad(f"charges[{i}]", "prices per TOU period need the plan 'schedule'")
        for field in ("import_price", "export_price"):
            given = set(getattr(ch, field))
            for name in sorted(given - names):
                raise bad(f"charges[{i}].{field}.{name}", f"period {name!r} is not in the schedule")
            for name in sorted(names - given):
                raise bad(f"charges[{i}].{field}", f"missing price for schedule period {name!r}")

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
        if isinstance(ch, NetMetering) and ch.period_names():
            self._check_net_metering(i, ch, names)
        if isinstance(ch, Demand) and ch.period_prices:
            own = ch.schedule or self.schedule
            if own is None:
                raise bad(f"charges[{i}]", "'period_prices' need the plan 'schedule'")
            names = set(own.period_names())
            for name in ch.period_prices:
                if name not in names:
                    raise bad(
                        f"charges[{i}].period_prices.{name}",
                        f"period {name!r} is not in the schedule",
                    )

    def period_names(self) -> tuple[str, ...]:
        """Every period name a line can carry, in index order: the plan schedule's (sorted),
        then those only in demand charges' own schedules (sorted)."""
        energy = self.energy_period_names()
        extra = {
            n
            for ch in self.charges
            if isinstance(ch, Demand) and ch.schedule is not None
            for n in ch.schedule.period_names()
        }
        return (*energy, *sorted(extra - set(energy)))

    def energy_period_names(self) -> tuple[str, ...]:
        """The plan schedule's period names in index order (sorted); empty without one."""
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
            "net_metering",
            "percentage",
            "discount",
            "progressive_billing",
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
