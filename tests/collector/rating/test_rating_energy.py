"""Energy tariffs: net metering (import/export registers) and demand billing rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from collector.errors import PlanError, RatingError
from collector.rating import parse_plan
from tests.collector.rating.rating_support import amounts, comparable, engine_lines, reference_lines

D = Decimal
T0 = 1_780_272_000  # 2026-06-01T00:00Z, a Monday
DAY = 86_400


def _plan(mode: str, tou: bool = False) -> Any:
    prices: dict[str, Any] = (
        {
            "import_price": {"low": "0.22", "normal": "0.28"},
            "export_price": {"low": "0.05", "normal": "0.08"},
        }
        if tou
        else {"import_price": "0.30", "export_price": "0.08"}
    )
    doc: dict[str, Any] = {
        "format": "tally.plan/v1",
        "id": "nm",
        "version": 1,
        "currency": "EUR",
        "charges": [
            {
                "type": "net_metering",
                "id": "energy",
                "unit": "kWh",
                "meter": "import",  # DSMR 1.8.1 + 1.8.2
                "export_meter": "export",  # DSMR 2.8.1 + 2.8.2
                "mode": mode,
                **prices,
            }
        ],
    }
    if tou:
        day = {"0-7": "low", "7-23": "normal", "23-24": "low"}
        doc["schedule"] = {
            "seasons": {"all": {"months": list(range(1, 13)), "weekday": day, "weekend": day}}
        }
    return parse_plan(doc)


def _rate(plan: Any, imp: list[tuple[int, float]], exp: list[tuple[int, float]]) -> list[Any]:
    usage = {
        "import": ("kWh", 3600, [(0, T0 + h * 3600, q) for h, q in imp]),
        "export": ("kWh", 3600, [(0, T0 + h * 3600, q) for h, q in exp]),
    }
    got = engine_lines(plan, [(T0, T0 + DAY)], usage)
    want = reference_lines(plan, [(T0, T0 + DAY)], usage)
    assert [[comparable(li) for li in s] for s in got] == [
        [comparable(li) for li in s] for s in want
    ]
    return got[0]


def test_gross_bills_all_import_and_credits_all_export() -> None:
    """300 kWh import x 0.30 = 90.00; 120 kWh export x 0.08 = -9.60."""
    lines = _rate(_plan("gross"), [(12, 300.0)], [(13, 120.0)])
    assert amounts(lines) == [
        ("energy/usage/None/None", D("90.00")),
        ("energy/export_credit/None/None", D("-9.60")),
    ]


def test_net_nets_export_against_import_and_shows_the_netted_quantity() -> None:
    """300 - 120 = 180 kWh x 0.30 = 54.00; the 120 kWh netted show on a 'netted' line."""
    lines = _rate(_plan("net"), [(12, 300.0)], [(13, 120.0)])
    assert [(li.kind.value, li.quantity, li.amount) for li in lines] == [
        ("usage", D(180), D("54.00")),
        ("export_credit", D(0), D("0.00")),
        ("netted", D(120), D("0.00")),
    ]


def test_net_excess_export_is_credited_at_the_export_price() -> None:
    """Import 100, export 250: nothing billed, 150 kWh x 0.08 = -12.00 credited, 100 netted."""
    lines = _rate(_plan("net"), [(12, 100.0)], [(13, 250.0)])
    assert [(li.kind.value, li.quantity, li.amount) for li in lines] == [
        ("usage", D(0), D("0.00")),
        ("export_credit", D(150), D("-12.00")),
        ("netted", D(100), D("0.00")),
    ]


def test_export_is_credited_at_its_own_tou_price_per_period() -> None:
    """Import 10 kWh at 03:00 (low) and 20 at 12:00 (normal), export 30 at 12:00 (normal).
    Net: low 10 x 0.22 = 2.20; normal excess 10 x 0.08 = -0.80, 20 netted.
    Gross: low 2.20; normal 20 x 0.28 = 5.60 and 30 x 0.08 = -2.40."""
    imp, exp = [(3, 10.0), (12, 20.0)], [(12, 30.0)]
    assert amounts(_rate(_plan("net", tou=True), imp, exp)) == [
        ("energy/usage/low/None", D("2.20")),
        ("energy/export_credit/low/None", D("0.00")),
        ("energy/usage/normal/None", D("0.00")),
        ("energy/export_credit/normal/None", D("-0.80")),
        ("energy/netted/normal/None", D("0.00")),
    ]
    assert amounts(_rate(_plan("gross", tou=True), imp, exp)) == [
        ("energy/usage/low/None", D("2.20")),
        ("energy/export_credit/low/None", D("0.00")),
        ("energy/usage/normal/None", D("5.60")),
        ("energy/export_credit/normal/None", D("-2.40")),
    ]


def test_missing_export_register_and_bad_prices_are_errors() -> None:
    """Rating without the export meter fails; prices must be both flat or both per period."""
    with pytest.raises(RatingError, match="export"):
        engine_lines(_plan("net"), [(T0, T0 + DAY)], {"import": ("kWh", 3600, [])})
    with pytest.raises(PlanError, match="both"):
        parse_plan(
            {
                "format": "tally.plan/v1",
                "id": "x",
                "version": 1,
                "currency": "EUR",
                "charges": [
                    {
                        "type": "net_metering",
                        "id": "e",
                        "unit": "kWh",
                        "import_price": "0.3",
                        "export_price": {"peak": "0.1"},
                    }
                ],
            }
        )


def _demand(**fields: Any) -> Any:
    return parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "d",
            "version": 1,
            "currency": "EUR",
            "charges": [{"type": "demand", "id": "demand", "unit": "kW", **fields}],
        }
    )


@pytest.mark.parametrize(
    ("fields", "days", "amount"),
    [
        ({"price": "9.80"}, 30, "1176.00"),  # 120 kW x 9.80
        ({"price": "9.80", "minimum": 150}, 30, "1470.00"),  # minimum chargeable 150 kW
        ({"price": "0.35", "price_per": "day"}, 30, "1260.00"),  # 120 x 0.35 x 30 days
        ({"price": "9.80", "prorate": True}, 10, "392.00"),  # 120 x 9.80 x 10 / 30
    ],
)
def test_demand_minimum_per_day_and_prorated(
    fields: dict[str, Any], days: int, amount: str
) -> None:
    """A 15-minute window of 30 kWh is 120 kW of demand, billed by each rule."""
    plan = _demand(**fields)
    usage = {"default": ("kWh", 900, [(0, T0 + 3600, 30.0)])}
    period, cycle = [(T0, T0 + days * DAY)], [(T0, T0 + 30 * DAY)]
    for lines in (
        engine_lines(plan, period, usage, cycles=cycle),
        reference_lines(plan, period, usage, cycles=cycle),
    ):
        (line,) = lines[0]
        assert (line.kind.value, line.amount) == ("demand", D(amount))


def _urdb(basis: str) -> Any:
    day = {"0-7": "offpeak", "7-23": "peak", "23-24": "offpeak"}

    def tiers(a: str, b: str) -> dict[str, Any]:
        return {"tiers": [{"from": 0, "to": 500, "price": a}, {"from": 500, "price": b}]}

    return parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "urdb",
            "version": 1,
            "currency": "EUR",
            "schedule": {
                "seasons": {"all": {"months": list(range(1, 13)), "weekday": day, "weekend": day}}
            },
            "charges": [
                {
                    "type": "time_of_use",
                    "id": "energy",
                    "unit": "kWh",
                    "tier_basis": basis,
                    "periods": {"peak": tiers("0.30", "0.40"), "offpeak": tiers("0.20", "0.25")},
                }
            ],
        }
    )


def test_month_total_tiers_are_allocated_pro_rata_to_periods() -> None:
    """URDB/SAM: peak 300 + off-peak 500 = 800 kWh; tier 1 (500) splits 187.5 / 312.5, tier 2
    (300) 112.5 / 187.5: 56.25 + 62.50 + 45.00 + 46.88 = 210.63. Per-period tiers bill 190.00."""
    usage = {"default": ("kWh", 3600, [(0, T0 + 12 * 3600, 300.0), (0, T0 + 3 * 3600, 500.0)])}
    period = [(T0, T0 + DAY)]
    for lines in (
        engine_lines(_urdb("month_total"), period, usage),
        reference_lines(_urdb("month_total"), period, usage),
    ):
        assert [(li.period, li.tier, li.quantity, li.amount) for li in lines[0]] == [
            ("offpeak", 0, D("312.5"), D("62.50")),
            ("offpeak", 1, D("187.5"), D("46.88")),
            ("peak", 0, D("187.5"), D("56.25")),
            ("peak", 1, D("112.5"), D("45.00")),
        ]
    per_period = engine_lines(_urdb("period"), period, usage)[0]
    assert sum(li.amount for li in per_period) == D("190.00")


def test_month_total_tiers_need_the_same_bounds_in_every_period() -> None:
    """Different tier bounds per period cannot split one total."""
    doc = _urdb("month_total").model_dump(mode="json", by_alias=True, exclude_none=True)
    doc["charges"][0]["periods"]["peak"]["tiers"][0]["to"] = "400"
    doc["charges"][0]["periods"]["peak"]["tiers"][1]["from"] = "400"
    with pytest.raises(PlanError, match="same bounds"):
        parse_plan(doc)


def test_demand_with_its_own_schedule() -> None:
    """Energy peak is 07-23, demand peak only 16-21: a 120 kW window at 12:00 is energy peak
    but demand off-peak; the 80 kW window at 17:00 sets the demand-peak line (80 x 6.40)."""
    day = {"0-7": "offpeak", "7-23": "peak", "23-24": "offpeak"}
    demand_day = {"0-16": "dem_base", "16-21": "dem_peak", "21-24": "dem_base"}
    every = list(range(1, 13))
    plan = parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "own",
            "version": 1,
            "currency": "EUR",
            "schedule": {"seasons": {"all": {"months": every, "weekday": day, "weekend": day}}},
            "charges": [
                {
                    "type": "demand",
                    "id": "demand",
                    "unit": "kW",
                    "schedule": {
                        "seasons": {
                            "all": {"months": every, "weekday": demand_day, "weekend": demand_day}
                        }
                    },
                    "period_prices": {"dem_peak": "6.40", "dem_base": "1.00"},
                }
            ],
        }
    )
    usage = {"default": ("kWh", 900, [(0, T0 + 12 * 3600, 30.0), (0, T0 + 17 * 3600, 20.0)])}
    for lines in (
        engine_lines(plan, [(T0, T0 + DAY)], usage),
        reference_lines(plan, [(T0, T0 + DAY)], usage),
    ):
        assert [(li.period, li.quantity, li.amount) for li in lines[0]] == [
            ("dem_base", D(120), D("120.00")),
            ("dem_peak", D(80), D("512.00")),
        ]
