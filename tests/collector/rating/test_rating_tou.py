"""Time-of-use: DST days, holidays, and consistency with per-unit pricing."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.rating import load_plan, parse_plan
from tests.collector.rating.rating_support import (
    comparable,
    engine_lines,
    reference_lines,
)

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600
EXAMPLES = Path(__file__).parents[3] / "collector" / "rating" / "examples"


def _night_day_plan() -> Any:
    profile = {"0-3": "night", "3-24": "day"}
    return parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "nd",
            "version": 1,
            "currency": "EUR",
            "time_zone": "Europe/Berlin",
            "schedule": {
                "seasons": {
                    "all": {"months": list(range(1, 13)), "weekday": profile, "weekend": profile}
                }
            },
            "charges": [
                {
                    "type": "time_of_use",
                    "id": "e",
                    "unit": "kWh",
                    "periods": {"night": {"price": "0.10"}, "day": {"price": "0.30"}},
                }
            ],
        }
    )


def _local_day(y: int, m: int, d: int) -> tuple[int, int]:
    start = datetime(y, m, d, tzinfo=BERLIN)
    end = datetime.combine(start.date() + timedelta(days=1), start.time(), tzinfo=BERLIN)
    return int(start.timestamp()), int(end.timestamp())


def _hourly(y: int, m: int, d: int) -> list[list[tuple[str | None, Decimal]]]:
    start, end = _local_day(y, m, d)
    rows = [(0, t, 1.0) for t in range(start, end, HOUR)]
    usage = {"default": ("kWh", HOUR, rows)}
    plan = _night_day_plan()
    got = engine_lines(plan, [(start, end)], usage)
    assert [comparable(li) for li in got[0]] == [
        comparable(li) for li in reference_lines(plan, [(start, end)], usage)[0]
    ]
    return [[(li.period, li.quantity) for li in got[0]]]


def test_spring_forward_day_has_23_hours_and_loses_a_night_hour() -> None:
    """2026-03-29 Berlin: 02:00-03:00 does not exist, so night (00-03) has 2 h, day 21 h."""
    assert _hourly(2026, 3, 29) == [[("day", Decimal(21)), ("night", Decimal(2))]]


def test_fall_back_day_has_25_hours_and_an_extra_night_hour() -> None:
    """2026-10-25 Berlin: 02:00-03:00 happens twice, so night has 4 h, day 21 h."""
    assert _hourly(2026, 10, 25) == [[("day", Decimal(21)), ("night", Decimal(4))]]


def test_holiday_is_priced_as_weekend() -> None:
    """Noon on Good Friday (2026-04-03, a holiday) is off-peak; noon the day before is peak."""
    plan = load_plan(EXAMPLES / "time_of_use.yaml")
    thu = int(datetime(2026, 4, 2, 12, tzinfo=BERLIN).timestamp())
    fri = int(datetime(2026, 4, 3, 12, tzinfo=BERLIN).timestamp())
    usage = {"default": ("kWh", 900, [(0, thu, 1.0), (1, fri, 1.0)])}
    periods = [(thu - 86_400, thu + 86_400), (fri - 86_400, fri + 86_400)]
    lines = engine_lines(plan, periods, usage)
    used = [{li.period: li.quantity for li in sub if li.quantity} for sub in lines]
    assert used == [{"peak": Decimal(1)}, {"offpeak": Decimal(1)}]


@settings(max_examples=40, deadline=None)
@given(
    price=st.decimals(0, 5, places=4).map(str),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kathmandu", "America/St_Johns"]),
    qty=st.lists(st.tuples(st.integers(0, 3000), st.floats(0, 1e4)), max_size=40),
)
def test_time_of_use_with_one_period_equals_per_unit(
    price: str, zone: str, qty: list[tuple[int, float]]
) -> None:
    """A schedule with a single period bills exactly what a per-unit charge bills."""
    base = {
        "format": "tally.plan/v1",
        "id": "p",
        "version": 1,
        "currency": "EUR",
        "time_zone": zone,
    }
    one = {"0-24": "all"}
    tou = parse_plan(
        {
            **base,
            "schedule": {
                "seasons": {"y": {"months": list(range(1, 13)), "weekday": one, "weekend": one}}
            },
            "charges": [
                {
                    "type": "time_of_use",
                    "id": "c",
                    "unit": "kWh",
                    "periods": {"all": {"price": price}},
                }
            ],
        }
    )
    pu = parse_plan(
        {**base, "charges": [{"type": "per_unit", "id": "c", "unit": "kWh", "price": price}]}
    )
    t0 = 1_774_224_000
    rows = [(0, t0 + 900 * k, q) for k, q in dict(qty).items()]
    usage = {"default": ("Wh", 900, rows)}
    period = [(t0, t0 + 3001 * 900)]
    a = engine_lines(tou, period, usage)[0]
    b = engine_lines(pu, period, usage)[0]
    assert [(li.quantity, li.amount_unrounded, li.amount) for li in a] == [
        (li.quantity, li.amount_unrounded, li.amount) for li in b
    ]
