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
    NEGATIVE = "negative"  # negative readings left out of the charge (meter units, price 0)
    CAP = "cap"  # the (negative) reduction down to a charge's spend cap
    PERCENTAGE = "percentage"  # rate × chargeable transaction amounts
    TRANSACTION_FEE = "transaction_fee"  # charged transactions × fixed fee
    TRANSACTION_MINIMUM = "transaction_minimum"  # raising transactions to their minimum fee
    TRANSACTION_MAXIMUM = "transaction_maximum"  # (negative) lowering them to the maximum fee
    DISCOUNT = "discount"  # (negative) a discount or coupon
    BILLED_IN_ADVANCE = "billed_in_advance"  # (negative) billed on interim invoices already
    EXPORT_CREDIT = "export_credit"  # (negative) exported energy credited at the export price
    NETTED = "netted"  # export netted against import in a period (price 0)
    TAX = "tax"  # a percentage tax of the charge (base amount × percent / 100)


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
        """Every line as a ``LineItem``, ordered by subscription, then invoice order."""
        return self._ordered(None)

    def by_subscription(self) -> list[list[LineItem]]:
        """Lines of each subscription in canonical invoice order (charge, period, tier, kind)."""
        out: list[list[LineItem]] = [[] for _ in range(self.subscription_count)]
        for item in self._ordered(None):
            out[item.subscription].append(item)
        return out

    def lines(self, subscription: int) -> list[LineItem]:
        """Lines of one subscription in canonical order (scans every block)."""
        return list(self._ordered(subscription))

    def _ordered(self, only: int | None) -> Iterator[LineItem]:
        names = self.plan.period_names()
        exponent = minor_unit_exponent(self.plan.currency)
        makers: list[_Maker] = []
        cols: list[list[npt.NDArray[Any]]] = [[], [], [], [], [], [], []]
        for k, b in enumerate(self.blocks):
            rows = np.arange(len(b)) if only is None else np.flatnonzero(b.subscription == only)
            makers.append(_Maker(b, rows, names, self.plan.currency, exponent))
            n = rows.size
            parts: tuple[npt.NDArray[Any], ...] = (
                b.subscription[rows],
                np.full(n, b.charge_pos),
                b.period[rows],
                b.tier[rows],
                np.full(n, KIND_ORDER[b.kind]),
                np.full(n, k),
                np.arange(n),
            )
            for col, values in zip(cols, parts, strict=True):
                col.append(values)
        if not makers:
            return
        sub, pos, per, tier, kind, blk, row = (np.concatenate(c) for c in cols)
        order = np.lexsort((kind, tier, per, pos, sub))
        for k, r in zip(blk[order].tolist(), row[order].tolist(), strict=True):
            yield makers[k].item(r)


class _Maker:
    """Turns the rows of one block into ``LineItem``s (columns converted to lists once)."""

    def __init__(
        self,
        b: LineBlock,
        rows: npt.NDArray[np.intp],
        names: Sequence[str],
        currency: str,
        exponent: int,
    ) -> None:
        self.b = b
        self.names = names
        self.currency = currency
        self.exponent = exponent
        self.sub = b.subscription[rows].tolist()
        self.tier = b.tier[rows].tolist()
        self.period = b.period[rows].tolist()
        self.qty = b.quantity[rows].tolist()
        self.price = b.unit_price[rows].tolist()
        self.amount = b.amount[rows].tolist()
        self.minor = b.amount_minor[rows].tolist()
        self.price_den = None if b.price_den is None else b.price_den[rows].tolist()
        self.amount_den = None if b.amount_den is None else b.amount_den[rows].tolist()
        self._prices: dict[tuple[int, int], Decimal] = {}
        self._texts: dict[tuple[int, int], str] = {}

    def item(self, i: int) -> LineItem:
        b = self.b
        tier, p = self.tier[i], self.period[i]
        pden = 1 if self.price_den is None else self.price_den[i]
        key = (self.price[i], pden)
        price = self._prices.get(key)
        if price is None:
            price = Decimal(self.price[i]).scaleb(-b.price_scale)
            if pden != 1:
                price = price / Decimal(pden)
            self._prices[key] = price
        if self.amount_den is None:
            amount = Decimal(self.amount[i]).scaleb(-b.amount_scale)
        else:
            amount = (Decimal(self.amount[i]) / Decimal(self.amount_den[i])).scaleb(-b.amount_scale)
        text = self._texts.get((tier, p))
        if text is None:
            name = self.names[p] if p >= 0 else None
            text = self._texts[(tier, p)] = _describe(b, tier, name, b.unit)
        return LineItem(
            self.sub[i],
            b.charge_id,
            b.kind,
            text,
            Decimal(self.qty[i]).scaleb(-QUANTITY_EXPONENT),
            b.unit,
            price,
            amount,
            Decimal(self.minor[i]).scaleb(-self.exponent),
            self.currency,
            tier if tier >= 0 else None,
            self.names[p] if p >= 0 else None,
        )
