"""Vectorised line builders: per-subscription totals (micro-units) → columnar ``LineBlock``s.

Each builder gets one row per (subscription[, TOU period]) with the chargeable quantity in
micro-units of the billing unit and returns blocks of exact integer amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from collector.rating.intmath import div_half_up, mul_arrays, narrow
from collector.rating.lines import LineBlock, LineKind
from collector.rating.money import QUANTITY_EXPONENT
from collector.rating.plan import Tier, decimals

MICRO = 10**QUANTITY_EXPONENT
I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]


def micro(value: Decimal) -> int:
    """A plan quantity (at most 6 decimals) as integer micro-units."""
    return int(value.scaleb(QUANTITY_EXPONENT))


def scaled(value: Decimal, scale: int) -> int:
    """A plan price as an integer at ``10**-scale``."""
    return int(value.scaleb(scale))


def price_scale(prices: Sequence[Decimal]) -> int:
    """Decimals needed to hold every price of a charge exactly."""
    return max((decimals(p) for p in prices), default=0)


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows to price: subscription, TOU period (-1) and quantity (micro-units, int64)."""

    subscription: I32
    period: I16
    quantity: npt.NDArray[Any]

    def take(self, mask: npt.NDArray[np.bool_]) -> Rows:
        """The rows where ``mask`` is true."""
        return Rows(self.subscription[mask], self.period[mask], self.quantity[mask])


@dataclass(frozen=True, slots=True)
class ChargeInfo:
    """What every block of one charge shares."""

    charge_id: str
    charge_pos: int
    description: str
    unit: str
    price_scale: int
    currency_exponent: int


def block(
    info: ChargeInfo,
    kind: LineKind,
    rows: Rows,
    price: npt.NDArray[Any],
    *,
    tier: npt.NDArray[np.int16] | None = None,
    unit: str | None = None,
) -> LineBlock:
    """A block of lines with amount = quantity × price, rounded half up to the minor unit."""
    n = rows.subscription.shape[0]
    amount = mul_arrays(rows.quantity, price)
    amount_scale = QUANTITY_EXPONENT + info.price_scale
    minor = narrow(div_half_up(amount, 10 ** (amount_scale - info.currency_exponent)))
    return LineBlock(
        charge_id=info.charge_id,
        charge_pos=info.charge_pos,
        kind=kind,
        unit=info.unit if unit is None else unit,
        description=info.description,
        subscription=rows.subscription,
        tier=np.full(n, -1, dtype=np.int16) if tier is None else tier,
        period=rows.period,
        quantity=rows.quantity,
        unit_price=price,
        price_scale=info.price_scale,
        amount=amount,
        amount_scale=amount_scale,
        amount_minor=minor,
    )


def _full(n: int, value: int) -> npt.NDArray[np.int64]:
    return np.full(n, value, dtype=np.int64)


def per_unit(info: ChargeInfo, rows: Rows, price: Decimal) -> list[LineBlock]:
    """One line per row: quantity × price."""
    n = rows.subscription.shape[0]
    return [block(info, LineKind.USAGE, rows, _full(n, scaled(price, info.price_scale)))]


def included(info: ChargeInfo, rows: Rows, allowance: Decimal) -> tuple[Rows, list[LineBlock]]:
    """Split off the included units: an ``included`` line at price 0, and the chargeable rest."""
    if allowance == 0:
        return rows, []
    free = micro(allowance)
    q = rows.quantity
    covered = np.minimum(q, free)
    rest = Rows(rows.subscription, rows.period, q - covered)
    n = q.shape[0]
    line = block(
        info, LineKind.INCLUDED, Rows(rows.subscription, rows.period, covered), _full(n, 0)
    )
    return rest, [line]


def round_quantity(q: npt.NDArray[Any], mode: str, precision: int) -> npt.NDArray[Any]:
    """Non-negative micro-unit quantities rounded to ``precision`` decimals: ``ceil``,
    ``floor`` or ``round`` (half away from zero)."""
    step = 10 ** (QUANTITY_EXPONENT - precision)
    if step == 1:
        return q
    if mode == "ceil":
        out: npt.NDArray[Any] = (q + (step - 1)) // step * step
    elif mode == "floor":
        out = q // step * step
    else:
        out = (2 * q + step) // (2 * step) * step
    return out


def _blocks(units: npt.NDArray[Any], size: Decimal) -> npt.NDArray[Any]:
    """Started blocks of ``size`` in ``units`` (micro-units), as micro-unit counts."""
    s = micro(size)
    out: npt.NDArray[Any] = (units + (s - 1)) // s * MICRO
    return out


def _block_unit(info: ChargeInfo, size: Decimal) -> str:
    return f"block of {size} {info.unit}"


def graduated(
    info: ChargeInfo, rows: Rows, tiers: Sequence[Tier], *, fee_at_zero: bool = True
) -> list[LineBlock]:
    """A line per tier reached (units inside it) and a flat-fee line per tier reached.

    Tier ``i`` is reached when the quantity exceeds its ``from``; tier 0 always gets a line so
    the charge shows on the invoice even with no usage, and its flat fee is billed at zero
    usage too when ``fee_at_zero``.
    """
    q = rows.quantity
    parts: list[tuple[Rows, int, Decimal]] = []
    fees: list[tuple[Rows, int, Decimal]] = []
    blocked: list[LineBlock] = []
    for i, t in enumerate(tiers):
        lo = micro(t.from_)
        reached = q > lo
        mask = reached if i > 0 else np.ones(q.shape[0], dtype=bool)
        sel = rows.take(mask)
        units = sel.quantity - lo
        units = np.maximum(units, 0)
        if t.to is not None:
            units = np.minimum(units, micro(t.to) - lo)
        if t.flat_fee > 0:
            fees.append((rows.take(mask if fee_at_zero else reached), i, t.flat_fee))
        if t.block is not None:  # Kill Bill ALL_TIERS: started blocks inside each tier
            r = Rows(sel.subscription, sel.period, _blocks(units, t.block))
            n = r.subscription.shape[0]
            unit = _block_unit(info, t.block)
            tier_no = np.full(n, i, dtype=np.int16)
            price = _full(n, scaled(t.price, info.price_scale))
            blocked.append(block(info, LineKind.TIER, r, price, tier=tier_no, unit=unit))
            continue
        parts.append((Rows(sel.subscription, sel.period, units), i, t.price))
    out = [*([_concat(info, LineKind.TIER, parts)] if parts else []), *blocked]
    if fees:
        out.append(_concat(info, LineKind.FLAT_FEE, [(_one(r), i, f) for r, i, f in fees]))
    return out


def volume(
    info: ChargeInfo,
    rows: Rows,
    tiers: Sequence[Tier],
    *,
    inclusive: bool = False,
    fee_at_zero: bool = True,
) -> list[LineBlock]:
    """All units at the price of the tier containing the quantity: ``[from, to)``, or
    ``(from, to]`` when ``inclusive`` (0 is in the first tier either way)."""
    q = rows.quantity
    bounds = np.array([micro(t.from_) for t in tiers], dtype=np.int64)
    side: Literal["left", "right"] = "left" if inclusive else "right"
    found = np.searchsorted(bounds, np.asarray(q, dtype=np.int64), side=side) - 1
    idx = np.maximum(found, 0).astype(np.int16)
    prices = np.array([scaled(t.price, info.price_scale) for t in tiers], dtype=np.int64)[idx]
    blocked = [i for i, t in enumerate(tiers) if t.block is not None]
    if not blocked:
        out = [block(info, LineKind.USAGE, rows, prices, tier=idx)]
    else:  # Kill Bill TOP_TIER: every unit in started blocks of the tier reached
        plain = ~np.isin(idx, blocked)
        out = [block(info, LineKind.USAGE, rows.take(plain), prices[plain], tier=idx[plain])]
        for i in blocked:
            size = tiers[i].block
            assert size is not None
            sel = idx == i
            r = rows.take(sel)
            r = Rows(r.subscription, r.period, _blocks(r.quantity, size))
            out.append(
                block(
                    info,
                    LineKind.USAGE,
                    r,
                    prices[sel],
                    tier=idx[sel],
                    unit=_block_unit(info, size),
                )
            )
    fees = np.array([scaled(t.flat_fee, info.price_scale) for t in tiers], dtype=np.int64)[idx]
    hit = ((q > 0) | fee_at_zero) & (fees > 0)
    if hit.any():
        out.append(
            block(info, LineKind.FLAT_FEE, _one(rows.take(hit)), fees[hit], tier=idx[hit], unit="")
        )
    return out


def package(info: ChargeInfo, rows: Rows, size: Decimal, price: Decimal) -> list[LineBlock]:
    """``ceil(quantity / size)`` packages × price (every started package counts)."""
    s = micro(size)
    blocks = (rows.quantity + (s - 1)) // s
    n = blocks.shape[0]
    r = Rows(rows.subscription, rows.period, blocks * MICRO)
    return [
        block(
            info,
            LineKind.PACKAGE,
            r,
            _full(n, scaled(price, info.price_scale)),
            unit=f"package of {size} {info.unit}",
        )
    ]


def _one(rows: Rows) -> Rows:
    return Rows(rows.subscription, rows.period, _full(rows.subscription.shape[0], MICRO))


def _concat(
    info: ChargeInfo, kind: LineKind, parts: Sequence[tuple[Rows, int, Decimal]]
) -> LineBlock:
    subs = np.concatenate([r.subscription for r, _, _ in parts])
    per = np.concatenate([r.period for r, _, _ in parts])
    qty = np.concatenate([np.asarray(r.quantity, dtype=np.int64) for r, _, _ in parts])
    tier = np.concatenate(
        [np.full(r.subscription.shape[0], i, dtype=np.int16) for r, i, _ in parts]
    )
    price = np.concatenate(
        [_full(r.subscription.shape[0], scaled(p, info.price_scale)) for r, _, p in parts]
    )
    unit = "" if kind is LineKind.FLAT_FEE else None
    return block(info, kind, Rows(subs, per, qty), price, tier=tier, unit=unit)
