"""Rated invoice lines: the :class:`LineItem` value object and the engine's columnar output.

The engine produces :class:`LineBlock` columns of exact integers (quantities in micro-units,
prices and amounts as scaled integers); :class:`RatedLines` turns them into ``LineItem``s with
``Decimal`` fields on demand (``by_subscription``), so rating 100,000 subscriptions does not
build 100,000 × lines Python objects unless they are wanted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from collector.rating.currencies import minor_unit_exponent
from collector.rating.money import QUANTITY_EXPONENT, Money
from collector.rating.plan import Plan


class LineKind(StrEnum):
    """What a line charges for."""

    INCLUDED = "included"  # units covered by the included allowance (price 0)
    USAGE = "usage"  # units × price (per_unit, volume, a TOU period's flat price)
    TIER = "tier"  # units inside one graduated tier
    FLAT_FEE = "flat_fee"  # the flat fee of a tier reached (graduated) or hit (volume)
    PACKAGE = "package"  # started packages × package price
    DEMAND = "demand"  # peak demand × price
    RATCHET = "ratchet"  # demand billed at the ratchet floor (above the actual peak)
    MINIMUM = "minimum_commitment"  # true-up to the minimum commitment
    RECURRING = "recurring"  # flat fee per period (prorated days)


KIND_ORDER: dict[LineKind, int] = {k: i for i, k in enumerate(LineKind)}


@dataclass(frozen=True, slots=True)
class LineItem:
    """One invoice line: exact and rounded amount, and where it came from (tier, TOU period)."""

    subscription: int
    charge_id: str
    kind: LineKind
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount_unrounded: Decimal
    amount: Decimal  # rounded once, half away from zero, to the currency's minor unit
    currency: str
    tier: int | None = None
    period: str | None = None

    @property
    def money(self) -> Money:
        """The rounded amount as :class:`Money`."""
        return Money(self.amount, self.currency)

    def sort_key(self, plan: Plan) -> tuple[int, int, int, int]:
        """Canonical order on an invoice: charge, TOU period, tier, kind."""
        pos = [c.id for c in plan.charges].index(self.charge_id)
        names = plan.period_names()
        period = names.index(self.period) if self.period is not None else -1
        tier = self.tier if self.tier is not None else -1
        return (pos, period, tier, KIND_ORDER[self.kind])


@dataclass(frozen=True, slots=True)
class LineBlock:
    """Lines of one charge and kind for many subscriptions, as exact integer columns.

    quantity = ``quantity / 10**6``; unit price = ``unit_price / 10**price_scale / price_den``;
    exact amount = ``amount / 10**amount_scale / amount_den``; ``amount_minor`` is the rounded
    amount in minor units. ``tier``/``period`` are -1 where not applicable. Integer columns may
    be ``object`` arrays of Python ints where int64 could overflow.
    """

    charge_id: str
    charge_pos: int
    kind: LineKind
    unit: str
    description: str
    subscription: npt.NDArray[np.int32]
    tier: npt.NDArray[np.int16]
    period: npt.NDArray[np.int16]
    quantity: npt.NDArray[Any]
    unit_price: npt.NDArray[Any]
    price_scale: int
    amount: npt.NDArray[Any]
    amount_scale: int
    amount_minor: npt.NDArray[Any]
    price_den: npt.NDArray[np.int64] | None = None
    amount_den: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return int(self.subscription.shape[0])


def _dec(value: Any, scale: int) -> Decimal:
    return Decimal(int(value)).scaleb(-scale)


def _describe(block: LineBlock, tier: int, period: str | None, unit: str) -> str:
    parts = [block.description or block.charge_id]
    if period is not None:
        parts.append(period)
    if tier >= 0:
        parts.append(f"tier {tier + 1}")
    if block.kind not in {LineKind.USAGE, LineKind.TIER}:
        parts.append(block.kind.value.replace("_", " "))
    return " · ".join(parts) + (f" ({unit})" if unit else "")


@dataclass(frozen=True, slots=True)
class RatedLines:
    """All lines of one rating call; subscription indices are those of the input."""

    plan: Plan
    subscription_count: int
    blocks: tuple[LineBlock, ...]
    peaks: dict[str, npt.NDArray[np.int64]]  # demand charge id → actual peak, micro-units

    def __len__(self) -> int:
        return sum(len(b) for b in self.blocks)

    def totals_minor(self) -> npt.NDArray[np.int64]:
        """Rounded total per subscription in minor units (sum of its rounded lines)."""
        out = np.zeros(self.subscription_count, dtype=np.int64)
        for b in self.blocks:
            np.add.at(out, b.subscription, b.amount_minor.astype(np.int64))
        return out

    def peak(self, charge_id: str, subscription: int) -> Decimal:
        """Actual (un-ratcheted) peak demand of a demand charge, for future ratchets."""
        return _dec(self.peaks[charge_id][subscription], QUANTITY_EXPONENT)

    def iter_lines(self) -> Iterator[LineItem]:
        """Every line as a ``LineItem``, block by block (not in invoice order)."""
        names = self.plan.period_names()
        currency = self.plan.currency
        for b in self.blocks:
            for i in range(len(b)):
                yield self._item(b, i, names, currency)

    def by_subscription(self) -> list[list[LineItem]]:
        """Lines of each subscription in canonical invoice order (charge, period, tier, kind)."""
        out: list[list[LineItem]] = [[] for _ in range(self.subscription_count)]
        for item in self.iter_lines():
            out[item.subscription].append(item)
        for lines in out:
            lines.sort(key=lambda li: li.sort_key(self.plan))
        return out

    def lines(self, subscription: int) -> list[LineItem]:
        """Lines of one subscription in canonical order (scans every block)."""
        names = self.plan.period_names()
        found = [
            self._item(b, int(i), names, self.plan.currency)
            for b in self.blocks
            for i in np.flatnonzero(b.subscription == subscription)
        ]
        return sorted(found, key=lambda li: li.sort_key(self.plan))

    @staticmethod
    def _item(b: LineBlock, i: int, names: Sequence[str], currency: str) -> LineItem:
        tier = int(b.tier[i])
        p = int(b.period[i])
        period = names[p] if p >= 0 else None
        price = _dec(b.unit_price[i], b.price_scale)
        if b.price_den is not None:
            price = price / Decimal(int(b.price_den[i]))
        amount = _dec(b.amount[i], b.amount_scale)
        if b.amount_den is not None:
            amount = Decimal(int(b.amount[i])) / Decimal(int(b.amount_den[i]))
            amount = amount.scaleb(-b.amount_scale)
        return LineItem(
            subscription=int(b.subscription[i]),
            charge_id=b.charge_id,
            kind=b.kind,
            description=_describe(b, tier, period, b.unit),
            quantity=_dec(b.quantity[i], QUANTITY_EXPONENT),
            unit=b.unit,
            unit_price=price,
            amount_unrounded=amount,
            amount=_dec(b.amount_minor[i], minor_unit_exponent(currency)),
            currency=currency,
            tier=tier if tier >= 0 else None,
            period=period,
        )
