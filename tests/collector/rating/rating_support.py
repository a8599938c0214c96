"""Helpers shared by the rating tests: run engine and reference on the same usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from collector.rating import (
    IntervalUsage,
    LineItem,
    Plan,
    Subscriptions,
    minor_unit_exponent,
    rate,
)
from collector.rating.reference import MeterReadings, Period, rate_subscription

Row = tuple[int, int, float]  # subscription, interval start, quantity


def comparable(line: LineItem) -> tuple[Any, ...]:
    """Every field of a line except the free-text description."""
    return (
        line.subscription,
        line.charge_id,
        line.kind,
        line.quantity,
        line.unit,
        line.unit_price,
        line.amount_unrounded,
        line.amount,
        line.currency,
        line.tier,
        line.period,
    )


def engine_lines(
    plan: Plan,
    periods: Sequence[tuple[int, int]],
    usage: Mapping[str, tuple[str, int, Sequence[Row]]],
    *,
    cycles: Sequence[tuple[int, int]] | None = None,
    previous_peaks: Mapping[str, Sequence[Sequence[float]]] | None = None,
    multipliers: Sequence[str] | None = None,
    billed: Sequence[str] | None = None,
) -> list[list[LineItem]]:
    """Lines per subscription from the vectorised engine."""
    subs = Subscriptions(
        period_start=np.array([p[0] for p in periods], dtype=np.int64),
        period_end=np.array([p[1] for p in periods], dtype=np.int64),
        cycle_start=None if cycles is None else np.array([c[0] for c in cycles], dtype=np.int64),
        cycle_end=None if cycles is None else np.array([c[1] for c in cycles], dtype=np.int64),
        previous_peaks={
            k: np.array(v, dtype=np.float64).reshape(len(periods), -1)
            for k, v in (previous_peaks or {}).items()
        },
        billed_in_advance=None
        if billed is None
        else np.array([int(Decimal(b).scaleb(minor_unit_exponent(plan.currency))) for b in billed]),
    )
    arrays = [
        IntervalUsage(
            unit=unit,
            interval_seconds=interval,
            meter=meter,
            multiplier=None if multipliers is None else tuple(Decimal(m) for m in multipliers),
            subscription=np.array([r[0] for r in rows], dtype=np.int32),
            start=np.array([r[1] for r in rows], dtype=np.int64),
            quantity=np.array([r[2] for r in rows], dtype=np.float64),
        )
        for meter, (unit, interval, rows) in usage.items()
    ]
    return rate(plan, subs, arrays).by_subscription()


def reference_lines(
    plan: Plan,
    periods: Sequence[tuple[int, int]],
    usage: Mapping[str, tuple[str, int, Sequence[Row]]],
    *,
    cycles: Sequence[tuple[int, int]] | None = None,
    previous_peaks: Mapping[str, Sequence[Sequence[float]]] | None = None,
    multipliers: Sequence[str] | None = None,
    billed: Sequence[str] | None = None,
) -> list[list[LineItem]]:
    """Lines per subscription from the Decimal reference."""
    out = []
    for i, (start, end) in enumerate(periods):
        meters = {
            meter: MeterReadings(
                unit,
                interval,
                [(t, q) for s, t, q in rows if s == i],
                Decimal(1) if multipliers is None else Decimal(multipliers[i]),
            )
            for meter, (unit, interval, rows) in usage.items()
        }
        period = Period(
            start,
            end,
            cycle_start=None if cycles is None else cycles[i][0],
            cycle_end=None if cycles is None else cycles[i][1],
            previous_peaks={k: list(v[i]) for k, v in (previous_peaks or {}).items()},
            billed_in_advance=Decimal(0) if billed is None else Decimal(billed[i]),
        )
        out.append(rate_subscription(plan, period, meters, index=i))
    return out


def amounts(lines: Sequence[LineItem]) -> list[tuple[str, Decimal]]:
    """``(description-free key, rounded amount)`` of each line, for readable assertions."""
    return [(f"{li.charge_id}/{li.kind.value}/{li.period}/{li.tier}", li.amount) for li in lines]
