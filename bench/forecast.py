"""Backtest: the bill forecast at day 10 and day 20 of each month vs the final invoice.

    python3 dev.py bench forecast [--customers 200] [--seed 7]

A simulated fleet in Europe/Amsterdam, one meter per customer, 15-minute usage from October
2025 to December 2026 with realistic shapes: households (morning/evening peaks, later weekend
mornings, winter-heavy, one or two holiday absences a year at base load), offices (weekday
08–18, near-idle weekends and public holidays, summer cooling), water (morning/evening draws,
summer garden use) and IoT data plans (evening traffic, weekend uplift, 3 %/month growth);
every day has a weather/behaviour factor (AR(1), ±8 %) and every quarter hour gamma noise.
Customers are on real plans of collector/rating/examples (flat + standing fee, graduated,
TOU with holidays, business TOU with demand charges and tiers; water per m³ and data per MB
with a standing fee).

For every customer and month of 2026 it forecasts the invoice total (tax included) at day 10
and day 20 with ``collector.analytics.forecast_bill`` (the customer's own weekday/hour
pattern, priced by the billing core) and with Lago's linear projection
(``units / period_ratio``), and prices the full month as the final invoice. Prints the median
absolute percentage error of both, how often the final total falls inside the forecast's
range, and a RESULT line.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from collector.analytics.bill_forecast import forecast_bill, price_usage
from collector.analytics.forecast import ForecastConfig
from collector.analytics.localtime import local_time
from collector.billing.model import Address, Customer, CustomerSpec
from collector.billing.periods import PeriodKey, period_for
from collector.billing.segments import Segment
from collector.rating import Plan, load_plan, parse_plan
from collector.storage.billing_usage_store import UsageRows

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "collector" / "rating" / "examples"
TZ = "Europe/Amsterdam"
START = datetime(2025, 10, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 56
HOLIDAYS = [
    date(2025, 12, 25), date(2025, 12, 26), date(2026, 1, 1), date(2026, 4, 3),
    date(2026, 4, 6), date(2026, 4, 27), date(2026, 5, 5), date(2026, 5, 14),
    date(2026, 5, 25), date(2026, 12, 25), date(2026, 12, 26),
]
WATER_PLAN = {
    "format": "tally.plan/v1", "id": "water", "version": 1, "currency": "EUR",
    "charges": [
        {"type": "recurring", "id": "standing", "amount": "8.50"},
        {"type": "per_unit", "id": "water", "unit": "m3", "price": "1.42"},
    ],
}


DATA_PLAN = {
    "format": "tally.plan/v1", "id": "data", "version": 1, "currency": "EUR",
    "charges": [
        {"type": "recurring", "id": "base", "amount": "12.00"},
        {"type": "per_unit", "id": "data", "unit": "MB", "price": "0.0021", "included": 2000},
    ],
}


def _bump(h: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = np.minimum(np.abs(h - centre), 24 - np.abs(h - centre))
    return np.exp(-0.5 * (d / width) ** 2)


@dataclass(frozen=True)
class Kind:
    name: str
    unit: str
    plans: tuple[str, ...]


KINDS = (
    Kind("household", "kWh", ("per_unit", "graduated", "time_of_use", "subscription")),
    Kind("office", "kWh", ("business_tou_demand", "time_of_use")),
    Kind("water", "m3", ("water",)),
    Kind("iot", "MB", ("data",)),
)


def simulate(kind: str, starts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """15-minute usage of one meter of ``kind`` on the UTC grid ``starts``."""
    lt = local_time(starts, TZ)
    h = (lt.local % 86_400) / 3600.0
    off = (lt.weekday >= 5) | np.isin(lt.day, [(d - date(1970, 1, 1)).days for d in HOLIDAYS])
    doy = (lt.day - 4) % 365.25
    days = np.unique(lt.day)
    weather = np.empty(days.shape[0])
    x = 0.0
    for i in range(days.shape[0]):
        x = 0.8 * x + rng.normal(0, 0.08 * math.sqrt(1 - 0.64))
        weather[i] = math.exp(x)
    day_factor = weather[np.searchsorted(days, lt.day)]
    scale = rng.lognormal(0, 0.5)
    if kind == "household":
        wd = 0.25 + 0.2 * _bump(h, 13, 3.5) + 0.55 * _bump(h, 7.5, 1) + 0.75 * _bump(h, 19, 1.6)
        we = 0.3 + 0.35 * _bump(h, 13, 3.5) + 0.45 * _bump(h, 9.5, 1.5) + 0.7 * _bump(h, 19, 2)
        shape = np.where(off, we, wd) * (1 + 0.35 * np.cos(2 * np.pi * (doy - 15) / 365.25))
        q = 0.25 * scale * shape
        for _ in range(rng.integers(1, 3)):  # absences at base load
            a = int(rng.integers(0, days.shape[0] - 14))
            away = (lt.day >= days[a]) & (lt.day < days[a] + int(rng.integers(5, 15)))
            q = np.where(away, 0.25 * scale * 0.25, q)
    elif kind == "office":
        busy = (h >= 8) & (h < 18) & ~off
        shape = np.where(busy, 1.0, 0.18) * (1 + 0.25 * np.cos(2 * np.pi * (doy - 200) / 365.25))
        q = 2.0 * scale * shape
    elif kind == "water":
        shape = 0.02 + 0.9 * _bump(h - off * 1.5, 7, 0.8) + 0.5 * _bump(h, 19.5, 1.2)
        shape = shape * (1 + 0.3 * np.maximum(np.cos(2 * np.pi * (doy - 196) / 365.25), 0))
        q = 0.004 * scale * shape
    else:
        shape = (0.1 + 0.3 * _bump(h, 11, 3) + 0.9 * _bump(h, 21, 2)) * np.where(off, 1.2, 1.0)
        months = (starts - starts[0]) / (30.4 * 86_400)
        q = 8.0 * scale * shape * 1.03**months
    noise = rng.gamma(4.0, 0.25, size=q.shape[0])
    out: np.ndarray = q * day_factor * noise
    return out


def load_plans() -> dict[str, Plan]:
    plans = {p.stem: load_plan(p) for p in EXAMPLES.glob("*.yaml")}
    plans["water"] = parse_plan(WATER_PLAN)
    plans["data"] = parse_plan(DATA_PLAN)
    return plans


def customer(cid: int) -> Customer:
    spec = CustomerSpec(
        name=f"c{cid}", address=Address("Damrak 1", "Amsterdam", "NL", "1012 LG"),
        currency="EUR", time_zone=TZ, tax_rate=Decimal("0.21"),
    )
    return Customer(cid, spec, START)


def ape(forecast: Decimal, final: Decimal) -> float:
    return abs(float(forecast - final)) / float(final) if final else math.nan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--half-life", type=float, default=ForecastConfig().half_life_days)
    ap.add_argument("--level-days", type=int, default=ForecastConfig().level_days)
    ap.add_argument("--level-7-only", action="store_true")
    ap.add_argument("--z", type=float, default=ForecastConfig().z)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cfg = ForecastConfig(
        half_life_days=args.half_life,
        level_days=args.level_days,
        level_from_period=not args.level_7_only,
        z=args.z,
    )
    plans = load_plans()
    starts = np.arange(int(START.timestamp()), int(END.timestamp()), 900, dtype=np.int64)
    t0 = int(starts[0])
    errors: dict[tuple[str, int], list[float]] = {}
    inside: dict[int, list[bool]] = {10: [], 20: []}
    tic = time.perf_counter()
    n_forecasts = 0
    for cid in range(1, args.customers + 1):
        kind = KINDS[cid % len(KINDS)]
        plan_name = kind.plans[cid % len(kind.plans)]
        usage = simulate(kind.name, starts, rng)
        if plan_name == "business_tou_demand":
            usage = usage / 40  # the CT meter reports secondary-side kWh (multiplier 40)
        cust = customer(cid)
        for month in range(1, 13):
            period = period_for(PeriodKey(2026, month), TZ)
            seg = Segment(0, cid, cid, cid, 1, period.start, period.end, Fraction(1))
            p0, p1 = int(period.start.timestamp()), int(period.end.timestamp())
            j0, j1 = (p0 - t0) // 900, (p1 - t0) // 900
            final = price_usage(
                cust, period, [seg], {1: plans[plan_name]}, {cid: kind.unit},
                rows=UsageRows(
                    np.full(j1 - j0, cid, dtype=np.int64), starts[j0:j1], usage[j0:j1],
                    np.zeros(j1 - j0), np.ones(j1 - j0, dtype=np.int64),
                ),
            ).total
            for day in (10, 20):
                now = period.start + timedelta(days=day - 1)  # at the start of day `day`
                h0 = int((now - timedelta(days=HISTORY_DAYS)).timestamp()) // 900 * 900
                k0, k1 = (h0 - t0) // 900, (int(now.timestamp()) - t0) // 900
                fc = forecast_bill(
                    cust, period, [seg], {1: plans[plan_name]}, {cid: kind.unit},
                    series_ids=np.asarray([cid], dtype=np.int64),
                    history=usage[None, k0:k1], history_start=h0, now=now,
                    holidays=HOLIDAYS, config=cfg,
                )
                n_forecasts += 1
                errors.setdefault(("pattern", day), []).append(ape(fc.expected.total, final))
                errors.setdefault(("linear", day), []).append(ape(fc.linear.total, final))
                errors.setdefault((f"pattern:{kind.name}", day), []).append(
                    ape(fc.expected.total, final)
                )
                errors.setdefault((f"linear:{kind.name}", day), []).append(
                    ape(fc.linear.total, final)
                )
                inside[day].append(fc.low.total <= final <= fc.high.total)
    elapsed = time.perf_counter() - tic
    print(f"{args.customers} customers x 12 months x 2 forecast days = {n_forecasts} forecasts"
          f" in {elapsed:.1f}s ({elapsed / n_forecasts * 1000:.1f} ms each, incl. pricing 5x)")
    print("median absolute percentage error of the invoice total (tax included):")
    print(f"{'':24}{'day 10':>10}{'day 20':>10}")
    for key in sorted({k for k, _ in errors}, key=lambda k: (":" in k, k.split(":")[-1], k)):
        e10 = float(np.nanmedian(errors[(key, 10)])) * 100
        e20 = float(np.nanmedian(errors[(key, 20)])) * 100
        print(f"{key:24}{e10:9.2f}%{e20:9.2f}%")
    cov10 = float(np.mean(inside[10])) * 100
    cov20 = float(np.mean(inside[20])) * 100
    print(f"final total inside the forecast's 80% range: day 10 {cov10:.0f}%, day 20 {cov20:.0f}%")
    p10 = float(np.nanmedian(errors[("pattern", 10)])) * 100
    p20 = float(np.nanmedian(errors[("pattern", 20)])) * 100
    l10 = float(np.nanmedian(errors[("linear", 10)])) * 100
    l20 = float(np.nanmedian(errors[("linear", 20)])) * 100
    print(f"RESULT forecast MdAPE day10 {p10:.2f}% day20 {p20:.2f}% | linear (Lago) day10"
          f" {l10:.2f}% day20 {l20:.2f}% | range coverage {cov10:.0f}%/{cov20:.0f}%")


if __name__ == "__main__":
    main()
