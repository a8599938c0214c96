"""Vectorised engine: input handling, grouping by plan, exactness at extreme magnitudes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.errors import RatingError
from collector.rating import (
    IntervalUsage,
    Subscriptions,
    load_plan,
    parse_plan,
    rate,
    rate_grouped,
)
from tests.collector.rating.rating_support import comparable, engine_lines, reference_lines

EXAMPLES = Path(__file__).parents[3] / "collector" / "rating" / "examples"
T0 = 1_780_272_000
MONTH = (T0, T0 + 30 * 86_400)


def _usage(rows: list[tuple[int, int, float]], unit: str = "Wh", meter: str = "default") -> Any:
    return IntervalUsage(
        unit=unit,
        interval_seconds=900,
        meter=meter,
        subscription=np.array([r[0] for r in rows], np.int32),
        start=np.array([r[1] for r in rows], np.int64),
        quantity=np.array([r[2] for r in rows], np.float64),
    )


def _subs(n: int) -> Subscriptions:
    return Subscriptions(
        period_start=np.full(n, MONTH[0], np.int64), period_end=np.full(n, MONTH[1], np.int64)
    )


def test_readings_outside_the_period_are_ignored() -> None:
    """Only rows with start in [period_start, period_end) are rated."""
    plan = load_plan(EXAMPLES / "per_unit.yaml")
    rows = [(0, MONTH[0] - 900, 5000.0), (0, MONTH[0], 1000.0), (0, MONTH[1], 7000.0)]
    (line,) = rate(plan, _subs(1), [_usage(rows)]).by_subscription()[0]
    assert line.quantity == Decimal(1)


@pytest.mark.parametrize("grouped", [True, False])
def test_readings_outside_each_subscriptions_own_period_are_ignored(grouped: bool) -> None:
    """Subscriptions with different periods: a row counts only inside its own subscription's
    period, whether the rows come grouped by subscription (checked per run) or mixed."""
    plan = load_plan(EXAMPLES / "per_unit.yaml")
    subs = Subscriptions(
        period_start=np.array([MONTH[0], MONTH[0] + 86_400], np.int64),
        period_end=np.array([MONTH[1], MONTH[1] - 86_400], np.int64),
    )
    rows = [
        (0, MONTH[0], 1000.0),
        (0, MONTH[1] - 900, 2000.0),
        (1, MONTH[0], 4000.0),  # before subscription 1's period
        (1, MONTH[0] + 86_400, 8000.0),
        (1, MONTH[1] - 900, 16000.0),  # after it
    ]
    if not grouped:
        rows = [rows[2], rows[0], rows[4], rows[1], rows[3]]
    got = rate(plan, subs, [_usage(rows)]).by_subscription()
    assert [line.quantity for (line,) in got] == [Decimal(3), Decimal(8)]


def test_reading_values_are_quantised_half_even_to_micro_units() -> None:
    """0.0000005 kWh rounds to 0 and 0.0000015 kWh to 0.000002 (half to even)."""
    plan = load_plan(EXAMPLES / "per_unit.yaml")
    got = rate(plan, _subs(2), [_usage([(0, T0, 0.0000005), (1, T0, 0.0000015)], unit="kWh")])
    assert [s[0].quantity for s in got.by_subscription()] == [Decimal(0), Decimal("0.000002")]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(3, T0, 1.0)], "subscription index"),
        ([(0, T0, -1.0)], "negative reading"),
        ([(0, T0, float("nan"))], "finite"),
        ([(0, T0, float("inf"))], "finite"),
    ],
)
def test_bad_usage_rows_are_refused(rows: list[tuple[int, int, float]], message: str) -> None:
    """Out-of-range subscriptions, negative, NaN or infinite quantities raise RatingError."""
    plan = load_plan(EXAMPLES / "per_unit.yaml")
    with pytest.raises(RatingError, match=message):
        rate(plan, _subs(1), [_usage(rows)])


def test_missing_meter_is_refused() -> None:
    """A charge whose meter has no usage array raises RatingError."""
    plan = load_plan(EXAMPLES / "volume.yaml")
    with pytest.raises(RatingError, match="meter 'messages'"):
        rate(plan, _subs(1), [_usage([(0, T0, 1.0)])])


def test_unit_of_another_dimension_is_refused() -> None:
    """MB cannot be billed per kWh."""
    plan = load_plan(EXAMPLES / "per_unit.yaml")
    with pytest.raises(RatingError, match="cannot convert"):
        rate(plan, _subs(1), [_usage([(0, T0, 1.0)], unit="MB")])


def test_grouped_rating_equals_rating_each_plan_alone() -> None:
    """Subscriptions on two plans rated in one call get the lines of their own plan."""
    plans = [load_plan(EXAMPLES / "per_unit.yaml"), load_plan(EXAMPLES / "graduated.yaml")]
    rows = [(i, T0 + 900 * k, 1000.0 * (i + 1)) for i in range(4) for k in range(3)]
    index = np.array([0, 1, 1, 0], np.int32)
    grouped = rate_grouped(plans, index, _subs(4), [_usage(rows)])
    for k, plan in enumerate(plans):
        alone = rate(plan, _subs(4), [_usage(rows)]).by_subscription()
        got = grouped[k].by_subscription()
        for i in range(4):
            want = alone[i] if index[i] == k else []
            assert [comparable(li) for li in got[i]] == [comparable(li) for li in want]


def test_totals_are_the_sum_of_rounded_lines() -> None:
    """totals_minor() adds the rounded lines of each subscription, in cents."""
    plan = load_plan(EXAMPLES / "business_tou_demand.yaml")
    rows = [(i, T0 + 900 * k, 37.3 * (k % 7) + i) for i in range(3) for k in range(500)]
    rated = rate(plan, _subs(3), [_usage(rows)])
    by_sub = rated.by_subscription()
    assert list(rated.totals_minor()) == [
        int(sum(li.amount for li in lines) * 100) for lines in by_sub
    ]


def test_huge_quantities_and_fine_prices_stay_exact() -> None:
    """Amounts beyond int64 (1e12 kWh x a 10-decimal price) equal the Decimal reference."""
    plan = parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "big",
            "version": 1,
            "currency": "EUR",
            "charges": [
                {"type": "per_unit", "id": "e", "unit": "kWh", "price": "1.2345678901"},
                {
                    "type": "graduated",
                    "id": "g",
                    "unit": "kWh",
                    "tiers": [
                        {"from": 0, "to": 1000, "price": "0.9999999999"},
                        {"from": 1000, "price": "0.0000000001"},
                    ],
                },
            ],
        }
    )
    rows = [(0, T0 + 900 * k, 8.9e12) for k in range(4)]  # Wh: the sum overflows int64 micro-Wh
    usage = {"default": ("Wh", 900, rows)}
    got = engine_lines(plan, [MONTH], usage)
    want = reference_lines(plan, [MONTH], usage)
    assert [comparable(li) for li in got[0]] == [comparable(li) for li in want[0]]
    assert got[0][0].amount == Decimal("43950616887.56")


def test_a_billed_quantity_beyond_int64_micro_units_is_refused() -> None:
    """3.56e13 kWh in one period cannot be represented in micro-units: RatingError."""
    plan = load_plan(EXAMPLES / "per_unit.yaml")
    rows = [(0, T0 + 900 * k, 8.9e12) for k in range(4)]
    with pytest.raises(RatingError, match="too large"):
        rate(plan, _subs(1), [_usage(rows, unit="kWh")])


def test_no_subscriptions_and_no_readings_rate_to_nothing() -> None:
    """An empty call returns no lines; subscriptions without readings get zero lines."""
    plan = load_plan(EXAMPLES / "business_tou_demand.yaml")
    assert len(rate(plan, _subs(0), [_usage([])])) == 0
    lines = rate(plan, _subs(2), [_usage([])]).by_subscription()
    usage_amounts = [li.amount for sub in lines for li in sub if li.charge_id != "base"]
    assert usage_amounts
    assert set(usage_amounts) == {Decimal("0.00")}


def test_json_plans_load_like_yaml(tmp_path: Path) -> None:
    """A .json plan file is read as JSON."""
    path = tmp_path / "p.json"
    path.write_text(
        '{"format": "tally.plan/v1", "id": "j", "version": 2, "currency": "USD",'
        ' "charges": [{"type": "per_unit", "id": "e", "unit": "GB", "price": "0.09"}]}'
    )
    plan = load_plan(path)
    (line,) = rate(plan, _subs(1), [_usage([(0, T0, 2500.0)], unit="MB")]).by_subscription()[0]
    assert (line.quantity, line.amount, line.currency) == (Decimal("2.5"), Decimal("0.23"), "USD")


def test_per_installation_multiplier_scales_each_subscription() -> None:
    """CT ratios 40 and 1: 400 Wh on the secondary bill 16 kWh and 0.4 kWh."""
    plan = load_plan(EXAMPLES / "per_unit.yaml")
    usage = IntervalUsage(
        unit="Wh",
        interval_seconds=900,
        subscription=np.array([0, 1], np.int32),
        start=np.array([T0, T0], np.int64),
        quantity=np.array([400.0, 400.0]),
        multiplier=(Decimal(40), Decimal(1)),
    )
    lines = rate(plan, _subs(2), [usage]).by_subscription()
    assert [(s[0].quantity, s[0].amount) for s in lines] == [
        (Decimal(16), Decimal("4.06")),
        (Decimal("0.4"), Decimal("0.10")),
    ]
