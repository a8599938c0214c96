"""Benchmark: rate many meters' 15-minute readings on a TOU + tiers + demand plan.

    .venv/bin/python bench/rating.py [--meters 100000] [--intervals 100] [--sample 200]

Times the vectorised engine on all readings (readings/s), the Decimal reference on a sample of
meters (readings/s), prints both and the ratio, and checks that the engine's lines equal the
reference's line by line on the sample. The plan is collector/rating/examples/
business_tou_demand.yaml (recurring fee, TOU energy with graduated off-peak tiers, flat and
on-peak 15-minute demand with an 80% ratchet, CT multiplier 40); ``--plan mixed`` rates
mixed_models.yaml instead (up_to tiers, blocks, rounding, caps, flagged negative readings,
a percentage charge on a second meter of one payment per 10 intervals, minimum, coupon,
progressive billing deduction) and counts the payments as readings too.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np

from collector.rating import IntervalUsage, LineItem, Subscriptions, load_plan, rate
from collector.rating.reference import MeterReadings, Period, rate_subscription

ROOT = Path(__file__).resolve().parents[1]
PLANS = {
    "tou": ROOT / "collector" / "rating" / "examples" / "business_tou_demand.yaml",
    "mixed": ROOT / "collector" / "rating" / "examples" / "mixed_models.yaml",
}
T0 = 1_780_264_800  # 2026-05-31T22:00Z = 2026-06-01 00:00 Europe/Berlin
MONTH = 30 * 86_400
STEP = 900


def _payments(usage: IntervalUsage, seed: int) -> IntervalUsage:
    """One payment (an amount in EUR) every 10th interval of each meter."""
    rng = np.random.default_rng(seed + 1)
    keep = np.arange(usage.quantity.size) % 10 == 0
    amounts = np.round(rng.gamma(2.0, 40.0, int(keep.sum())), 2)
    return IntervalUsage(
        unit="amount",
        interval_seconds=STEP,
        meter="payments",
        subscription=usage.subscription[keep],
        start=usage.start[keep],
        quantity=amounts,
    )


def _data(meters: int, intervals: int, seed: int) -> tuple[Subscriptions, IntervalUsage]:
    rng = np.random.default_rng(seed)
    sub = np.repeat(np.arange(meters, dtype=np.int32), intervals)
    # each meter's readings start on a different day and hour, so weekdays, weekends, the
    # holiday-free June calendar and every TOU period all occur
    first = (
        T0
        + (np.arange(meters, dtype=np.int64) % 29) * 86_400
        + (np.arange(meters, dtype=np.int64) % 24) * 3600
    )
    start = np.repeat(first, intervals) + np.tile(
        np.arange(intervals, dtype=np.int64) * STEP, meters
    )
    qty = np.round(rng.gamma(2.0, 60.0, meters * intervals), 3)  # Wh on the CT secondary
    qty[rng.random(qty.size) < 0.001] *= -1  # a few negative readings (flagged by mixed)
    prev = rng.uniform(5, 80, (meters, 11))
    prev[rng.random((meters, 11)) < 0.2] = np.nan
    subs = Subscriptions(
        period_start=np.full(meters, T0, np.int64),
        period_end=np.full(meters, T0 + MONTH, np.int64),
        previous_peaks={"demand": prev},
        billed_in_advance=np.where(np.arange(meters) % 3 == 0, 50_000, 0).astype(np.int64),
    )
    usage = IntervalUsage(
        unit="Wh", interval_seconds=STEP, subscription=sub, start=start, quantity=qty
    )
    return subs, usage


def _row(li: LineItem) -> tuple[object, ...]:
    return (
        li.subscription,
        li.charge_id,
        li.kind,
        li.quantity,
        li.unit,
        li.unit_price,
        li.amount_unrounded,
        li.amount,
        li.tier,
        li.period,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=100_000)
    ap.add_argument("--intervals", type=int, default=100)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3, help="engine runs; the best is reported")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--plan", choices=sorted(PLANS), default="tou")
    args = ap.parse_args()

    plan = load_plan(PLANS[args.plan])
    subs, usage = _data(args.meters, args.intervals, args.seed)
    meters = [usage]
    if args.plan == "mixed":
        meters.append(_payments(usage, args.seed))
    else:  # the TOU plan rejects negative readings (its default): keep them positive
        usage = replace(usage, quantity=np.abs(usage.quantity))
        meters = [usage]
    n = sum(m.quantity.size for m in meters)
    print(
        f"plan {plan.id} v{plan.version}: {len(plan.charges)} charges; "
        f"{args.meters:,} meters x {args.intervals} intervals = {n:,} readings"
    )

    best = float("inf")
    rated = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        rated = rate(plan, subs, meters)
        best = min(best, time.perf_counter() - t)
    assert rated is not None
    engine_rate = n / best
    print(f"engine:    {best:8.3f} s  {engine_rate:14,.0f} readings/s  ({len(rated):,} lines)")

    t = time.perf_counter()
    rated.by_subscription()
    mat = time.perf_counter() - t
    print(
        f"           {mat:8.3f} s  to materialise every line as Decimal LineItems "
        f"({len(rated) / mat:,.0f} lines/s)"
    )

    sample = np.linspace(0, args.meters - 1, min(args.sample, args.meters)).astype(int)
    per_meter: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for m in meters:
        per_sub: dict[int, list[tuple[int, float]]] = {int(i): [] for i in sample}
        mask = np.isin(m.subscription, sample)
        for s_, t_, q_ in zip(
            m.subscription[mask].tolist(),
            m.start[mask].tolist(),
            m.quantity[mask].tolist(),
            strict=True,
        ):
            per_sub[s_].append((t_, q_))
        per_meter[m.meter] = per_sub
    prev = subs.previous_peaks["demand"]
    ref_lines = {}
    t = time.perf_counter()
    for i in sample:
        assert subs.billed_in_advance is not None
        period = Period(
            int(subs.period_start[i]),
            int(subs.period_end[i]),
            previous_peaks={"demand": prev[i].tolist()},
            billed_in_advance=Decimal(int(subs.billed_in_advance[i])) / 100,
        )
        readings = {
            m.meter: MeterReadings(m.unit, STEP, per_meter[m.meter][int(i)]) for m in meters
        }
        ref_lines[int(i)] = rate_subscription(plan, period, readings, index=int(i))
    ref_time = time.perf_counter() - t
    ref_readings = sum(len(v) for per in per_meter.values() for v in per.values())
    ref_rate = ref_readings / ref_time
    print(
        f"reference: {ref_time:8.3f} s  {ref_rate:14,.0f} readings/s  "
        f"({len(sample)} meters, {ref_readings:,} readings)"
    )
    print(f"ratio engine/reference: {engine_rate / ref_rate:,.0f}x")

    mismatches = 0
    for i in sample:
        got = [_row(li) for li in rated.lines(int(i))]
        want = [_row(li) for li in ref_lines[int(i)]]
        mismatches += got != want
    total = sum(li.amount for i in sample for li in ref_lines[int(i)])
    print(
        f"check: {len(sample) - mismatches}/{len(sample)} sampled meters identical line by line "
        f"(sample total {total} {plan.currency})"
    )
    target = engine_rate >= 10_000_000 and engine_rate / ref_rate >= 100
    verdict = "met" if target else "NOT met"
    print(f"target >= 10,000,000 readings/s and >= 100x reference: {verdict}")
    print(
        f"RESULT name=rating plan={args.plan} figure={engine_rate:.0f} readings/s"
        f" baseline={ref_rate:.0f}"
        f" readings/s ratio={engine_rate / ref_rate:.1f}x"
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
