"""Demand charges: window peaks, per-period demand, ratchets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from collector.errors import RatingError
from collector.rating import IntervalUsage, LineKind, Subscriptions, load_plan, parse_plan, rate
from tests.collector.rating.rating_support import comparable, engine_lines, reference_lines

EXAMPLES = Path(__file__).parents[3] / "collector" / "rating" / "examples"
T0 = 1_780_272_000  # 2026-06-01T00:00Z
MONTH = [(T0, T0 + 30 * 86_400)]


def _demand_rows() -> list[tuple[int, int, float]]:
    """Four 15-minute intervals; the highest holds 30 kWh, i.e. 120 kW average."""
    return [(0, T0 + 900 * k, q) for k, q in enumerate([5.0, 30.0, 12.5, 0.25])]


def test_demand_bills_the_highest_window_average() -> None:
    """30 kWh in 15 minutes is 120 kW; 120 x 12.50 = 1500.00 without history."""
    plan = load_plan(EXAMPLES / "demand.yaml")
    (line,) = engine_lines(plan, MONTH, {"default": ("kWh", 900, _demand_rows())})[0]
    assert (line.kind, line.quantity, line.amount) == (
        LineKind.DEMAND,
        Decimal(120),
        Decimal("1500.00"),
    )


def test_ratchet_bills_80_percent_of_the_previous_peak_when_higher() -> None:
    """Previous peaks 150 and 200 kW: floor 0.8 x 200 = 160 kW > 120 kW -> 160 x 12.50."""
    plan = load_plan(EXAMPLES / "demand.yaml")
    usage = {"default": ("kWh", 900, _demand_rows())}
    prev = {"demand": [[150.0, 200.0, float("nan")]]}
    for lines in (
        engine_lines(plan, MONTH, usage, previous_peaks=prev),
        reference_lines(plan, MONTH, usage, previous_peaks=prev),
    ):
        (line,) = lines[0]
        assert (line.kind, line.quantity, line.amount) == (
            LineKind.RATCHET,
            Decimal(160),
            Decimal("2000.00"),
        )


def test_ratchet_only_looks_back_the_configured_months() -> None:
    """With months: 1 only the most recent previous peak (100 kW -> floor 80) counts."""
    plan = parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "d",
            "version": 1,
            "currency": "EUR",
            "charges": [
                {
                    "type": "demand",
                    "id": "d",
                    "unit": "kW",
                    "price": "1",
                    "ratchet": {"percent": 80, "months": 1},
                }
            ],
        }
    )
    usage = {"default": ("kWh", 900, _demand_rows())}
    (line,) = engine_lines(plan, MONTH, usage, previous_peaks={"d": [[500.0, 100.0]]})[0]
    assert (line.kind, line.quantity) == (LineKind.DEMAND, Decimal(120))


def test_actual_peak_is_reported_for_future_ratchets() -> None:
    """RatedLines.peaks holds the actual (not ratcheted) peak."""
    plan = load_plan(EXAMPLES / "demand.yaml")
    rows = _demand_rows()
    rated = rate(
        plan,
        Subscriptions(
            period_start=np.array([MONTH[0][0]]),
            period_end=np.array([MONTH[0][1]]),
            previous_peaks={"demand": np.array([[500.0]])},
        ),
        [
            IntervalUsage(
                unit="kWh",
                interval_seconds=900,
                subscription=np.zeros(4, np.int32),
                start=np.array([r[1] for r in rows]),
                quantity=np.array([r[2] for r in rows]),
            )
        ],
    )
    assert rated.peak("demand", 0) == Decimal(120)


def test_five_minute_intervals_are_summed_into_fixed_fifteen_minute_windows() -> None:
    """10+10+10 kWh in one window is 120 kW; a lone 15 kWh reading elsewhere is 60 kW."""
    plan = load_plan(EXAMPLES / "demand.yaml")
    rows = [(0, T0 + 300 * k, q) for k, q in enumerate([10.0, 10.0, 10.0, 15.0, 0.0, 0.0])]
    usage = {"default": ("kWh", 300, rows)}
    got = engine_lines(plan, MONTH, usage)
    assert got[0][0].quantity == Decimal(120)
    want = reference_lines(plan, MONTH, usage)
    assert [comparable(li) for li in got[0]] == [comparable(li) for li in want[0]]


def test_intervals_longer_than_the_window_are_refused() -> None:
    """Hourly readings cannot give a 15-minute demand."""
    plan = load_plan(EXAMPLES / "demand.yaml")
    with pytest.raises(RatingError, match="demand windows"):
        engine_lines(plan, MONTH, {"default": ("kWh", 3600, [(0, T0, 1.0)])})


def test_on_peak_demand_uses_only_peak_windows() -> None:
    """The on-peak demand line takes the highest window that starts in a peak hour."""
    plan = load_plan(EXAMPLES / "business_tou_demand.yaml")
    # 2026-06-03 is a Wednesday; 09:00Z = 11:00 Berlin (peak), 03:00Z = 05:00 (off-peak)
    peak_t, night_t = 1_780_477_200, 1_780_455_600
    rows = [(0, peak_t, 100.0), (0, night_t, 400.0)]  # Wh on the CT secondary, x 40
    usage = {"default": ("Wh", 900, rows)}
    lines = engine_lines(plan, MONTH, usage)[0]
    demand = {li.period: li.quantity for li in lines if li.charge_id == "demand"}
    # 400 Wh x 40 = 16 kWh in 15 min = 64 kW overall; on peak 100 Wh x 40 = 4 kWh -> 16 kW
    assert demand == {None: Decimal(64), "peak": Decimal(16)}


def test_rolling_windows_find_a_peak_that_straddles_fixed_windows() -> None:
    """5-min readings 0,0,10,10,10,0 kWh: fixed 15-min windows peak at 20 kWh (80 kW), a
    rolling window starting at minute 10 holds 30 kWh (120 kW)."""
    rows = [(0, T0 + 300 * k, q) for k, q in enumerate([0.0, 0.0, 10.0, 10.0, 10.0, 0.0])]
    usage = {"default": ("kWh", 300, rows)}
    peaks = {}
    for kind in ("fixed", "rolling"):
        plan = parse_plan(
            {
                "format": "tally.plan/v1",
                "id": "d",
                "version": 1,
                "currency": "EUR",
                "charges": [
                    {"type": "demand", "id": "d", "unit": "kW", "price": "1", "window_type": kind}
                ],
            }
        )
        got = engine_lines(plan, MONTH, usage)
        want = reference_lines(plan, MONTH, usage)
        assert [comparable(li) for li in got[0]] == [comparable(li) for li in want[0]]
        peaks[kind] = got[0][0].quantity
    assert peaks == {"fixed": Decimal(80), "rolling": Decimal(120)}
