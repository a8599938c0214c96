"""Vectorised lines of a ``percentage`` charge (Lago's percentage model), exact integers.

Every reading of the charge's meter is one transaction (an amount in the plan currency). Rows
are ordered by (subscription, time) once; ranks and running totals per subscription then give
the free allowance, and each transaction's fee is ``rate × base + fixed fee`` kept within the
per-transaction minimum and maximum, all as integers at ``10**-scale``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from collector.errors import RatingError
from collector.rating import charge_lines as cl
from collector.rating.charges import Percentage, decimals
from collector.rating.intmath import exact_sums
from collector.rating.lines import LineBlock, LineKind
from collector.rating.meter_usage import MeterUsage
from collector.rating.money import QUANTITY_EXPONENT

I64 = npt.NDArray[np.int64]
MICRO = cl.MICRO
_SAFE = 2**62
_RATE_SHIFT = QUANTITY_EXPONENT + 2  # a rate in percent of amounts in micro-units


def scale_of(ch: Percentage) -> int:
    """Decimals that hold every per-transaction fee exactly (micro-units × rate / 100)."""
    money = [ch.fixed_fee, ch.min_per_transaction, ch.max_per_transaction]
    return max(8 + decimals(ch.rate), *(decimals(v) for v in money if v is not None))


def _charged_base(ch: Percentage, m: MeterUsage) -> tuple[npt.NDArray[np.int32], I64, I64]:
    """Subscription, chargeable base amount (micro-units) and charged flag of each row."""
    order = np.lexsort((m.start, m.subscription))
    sub, amount = m.subscription[order], m.quantity[order]
    k = sub.size
    if k and int(amount.max()) * k >= _SAFE:
        raise RatingError(f"charge {ch.id!r}: transaction amounts too large")
    idx = np.arange(k)
    first = np.ones(k, dtype=bool)
    first[1:] = sub[1:] != sub[:-1]
    group = np.maximum.accumulate(np.where(first, idx, 0)) if k else idx
    rank = idx - group
    cum = np.cumsum(amount)
    before = cum - amount - (cum[group] - amount[group]) if k else cum
    in_count = rank < ch.free_transactions if ch.free_transactions is not None else np.ones(k, bool)
    if ch.free_amount is None:
        window = in_count if ch.free_transactions is not None else np.zeros(k, bool)
        covered = np.zeros(k, dtype=np.int64)
    else:
        free = cl.micro(ch.free_amount)
        window = in_count & (before + amount <= free)
        covered = np.where(in_count, np.clip(free - before, 0, amount), 0)
    base = np.where(window, 0, amount - covered)
    return sub, base, (~window).astype(np.int64)


def percentage(info: cl.ChargeInfo, ch: Percentage, m: MeterUsage, n: int) -> list[LineBlock]:
    """The percentage line, the fixed-fee line and per-transaction min/max adjustments."""
    scale = scale_of(ch)
    sub, base, charged = _charged_base(ch, m)
    rate = cl.scaled(ch.rate, scale - _RATE_SHIFT)  # per micro-unit of amount
    subs = np.arange(n, dtype=np.int32)
    none = np.full(n, -1, np.int16)
    pct_info = replace(info, price_scale=scale - QUANTITY_EXPONENT)
    out = [
        cl.block(
            pct_info,
            LineKind.PERCENTAGE,
            cl.Rows(subs, none, _sums(sub, base, n, ch)),
            np.full(n, rate, dtype=np.int64),
        )
    ]
    count = exact_sums(sub, charged, n).astype(np.int64)
    if ch.fixed_fee > 0:
        fee_info = replace(info, price_scale=decimals(ch.fixed_fee), unit="transaction")
        out.append(
            cl.block(
                fee_info,
                LineKind.TRANSACTION_FEE,
                cl.Rows(subs, none, count * MICRO),
                np.full(n, cl.scaled(ch.fixed_fee, fee_info.price_scale), dtype=np.int64),
            )
        )
    if ch.min_per_transaction is None and ch.max_per_transaction is None:
        return out
    raw = base * rate + cl.scaled(ch.fixed_fee, scale)  # each fee at 10**-scale
    adj_info = replace(info, price_scale=scale, unit="")
    for bound, kind, sign in (
        (ch.min_per_transaction, LineKind.TRANSACTION_MINIMUM, 1),
        (ch.max_per_transaction, LineKind.TRANSACTION_MAXIMUM, -1),
    ):
        if bound is None:
            continue
        gap = sign * (cl.scaled(bound, scale) - raw)
        total = _sums(sub, np.where(charged.astype(bool), np.maximum(gap, 0), 0), n, ch)
        hit = total > 0
        if hit.any():
            rows = cl.Rows(subs[hit], none[hit], np.full(int(hit.sum()), MICRO, np.int64))
            b = cl.block(adj_info, kind, rows, total[hit])
            if sign < 0:
                b = replace(
                    b, unit_price=-b.unit_price, amount=-b.amount, amount_minor=-b.amount_minor
                )
            out.append(b)
    return out


def _sums(sub: npt.NDArray[np.int32], values: I64, n: int, ch: Percentage) -> I64:
    total = exact_sums(sub, np.asarray(values, dtype=np.int64), n)
    if total.dtype == object or (total.size and int(np.abs(total).max()) >= _SAFE):
        raise RatingError(f"charge {ch.id!r}: amounts too large")
    return np.asarray(total, dtype=np.int64)
