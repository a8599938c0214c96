"""Plan format validation: every invalid plan names the bad field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collector.errors import PlanError
from collector.rating import load_plan, parse_plan, plan_from_text

EXAMPLES = Path(__file__).parents[3] / "collector" / "rating" / "examples"


def _plan(*charges: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "format": "tally.plan/v1",
        "id": "p",
        "version": 1,
        "currency": "EUR",
        "charges": list(charges),
        **extra,
    }


def _tiers(*t: dict[str, Any]) -> dict[str, Any]:
    return {"type": "graduated", "id": "g", "unit": "kWh", "tiers": list(t)}


def _error(data: dict[str, Any]) -> PlanError:
    with pytest.raises(PlanError) as info:
        parse_plan(data)
    return info.value


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_example_plan_is_valid(path: Path) -> None:
    """The example plans in collector/rating/examples load."""
    assert load_plan(path).format == "tally.plan/v1"


@pytest.mark.parametrize(
    ("tiers", "path", "message"),
    [
        (
            [{"from": 0, "to": 100, "price": 1}, {"from": 90, "price": 1}],
            "charges[0].tiers[1].from",
            "overlap",
        ),
        (
            [{"from": 0, "to": 100, "price": 1}, {"from": 120, "price": 1}],
            "charges[0].tiers[1].from",
            "missing tier",
        ),
        (
            [
                {"from": 0, "to": 100, "price": 1},
                {"from": 100, "to": 50, "price": 1},
                {"from": 50, "price": 1},
            ],
            "charges[0].tiers[1].to",
            "ascend",
        ),
        ([{"from": 5, "price": 1}], "charges[0].tiers[0].from", "start at 0"),
        ([{"from": 0, "to": 100, "price": 1}], "charges[0].tiers[0].to", "missing tier"),
        (
            [{"from": 0, "price": 1}, {"from": 100, "price": 1}],
            "charges[0].tiers[0].to",
            "only the last",
        ),
        ([{"from": 0, "price": -1}], "charges[0].tiers[0].price", "non-negative"),
        ([{"from": 0, "price": 1, "flat_fee": -2}], "charges[0].tiers[0].flat_fee", "non-negative"),
    ],
)
def test_bad_tiers_are_rejected_with_their_path(
    tiers: list[dict[str, Any]], path: str, message: str
) -> None:
    """Overlapping, missing, non-ascending or negative tiers name the offending field."""
    err = _error(_plan(_tiers(*tiers)))
    assert err.path == path
    assert message in str(err)


def test_unknown_currency_is_rejected() -> None:
    """A currency outside the ISO 4217 table is refused at 'currency'."""
    data = _plan({"type": "per_unit", "id": "e", "unit": "kWh", "price": 1}, currency="EUX")
    assert _error(data).path == "currency"


def test_unknown_unit_is_rejected() -> None:
    """A unit the engine cannot convert is refused at the charge's unit."""
    assert _error(_plan({"type": "per_unit", "id": "e", "unit": "kWhh", "price": 1})).path == (
        "charges[0].unit"
    )


def test_negative_price_is_rejected() -> None:
    """Prices must be non-negative."""
    assert _error(_plan({"type": "per_unit", "id": "e", "unit": "kWh", "price": "-0.1"})).path == (
        "charges[0].price"
    )


def test_amount_finer_than_the_minor_unit_is_rejected() -> None:
    """A recurring fee of 9.999 EUR cannot be invoiced."""
    data = _plan({"type": "recurring", "id": "f", "amount": "9.999"})
    assert _error(data).path == "charges[0].amount"


def test_duplicate_charge_ids_are_rejected() -> None:
    """Charge ids identify lines, so they must be unique."""
    c = {"type": "per_unit", "id": "e", "unit": "kWh", "price": 1}
    assert _error(_plan(c, c)).path == "charges[1].id"


def test_time_of_use_needs_a_price_for_every_schedule_period() -> None:
    """A schedule period without a price is reported at the charge's periods."""
    prof = {"0-8": "night", "8-24": "day"}
    data = _plan(
        {"type": "time_of_use", "id": "t", "unit": "kWh", "periods": {"day": {"price": 1}}},
        schedule={
            "seasons": {"y": {"months": list(range(1, 13)), "weekday": prof, "weekend": prof}}
        },
    )
    err = _error(data)
    assert (err.path, "night" in str(err)) == ("charges[0].periods", True)


def test_schedule_hours_must_cover_the_day() -> None:
    """An hour profile with a hole names the season and day type."""
    data = _plan(
        {"type": "per_unit", "id": "e", "unit": "kWh", "price": 1},
        schedule={
            "seasons": {
                "y": {
                    "months": list(range(1, 13)),
                    "weekday": {"0-8": "a", "9-24": "b"},
                    "weekend": {"0-24": "a"},
                }
            }
        },
    )
    err = _error(data)
    assert err.path == "schedule.seasons.y.weekday"
    assert "[8]" in str(err)


def test_schedule_months_must_be_in_exactly_one_season() -> None:
    """A month missing from every season is reported."""
    day = {"0-24": "a"}
    data = _plan(
        {"type": "per_unit", "id": "e", "unit": "kWh", "price": 1},
        schedule={"seasons": {"y": {"months": [1, 2], "weekday": day, "weekend": day}}},
    )
    assert "months [3, 4" in str(_error(data))


def test_urdb_style_matrices_are_accepted() -> None:
    """A 12x24 weekday/weekend matrix of period names is a valid schedule."""
    row = ["off"] * 8 + ["on"] * 12 + ["off"] * 4
    data = _plan(
        {
            "type": "time_of_use",
            "id": "t",
            "unit": "kWh",
            "periods": {"on": {"price": 2}, "off": {"price": 1}},
        },
        schedule={"weekday": [row] * 12, "weekend": [["off"] * 24] * 12},
    )
    assert parse_plan(data).period_names() == ("off", "on")


def test_unknown_format_is_rejected() -> None:
    """Only tally.plan/v1 is understood."""
    assert _error({**_plan(), "format": "tally.plan/v9"}).path == "format"


def test_demand_window_must_divide_an_hour() -> None:
    """Demand windows of 7 minutes are refused."""
    data = _plan({"type": "demand", "id": "d", "unit": "kW", "price": 1, "window_minutes": 7})
    assert _error(data).path == "charges[0].window_minutes"


def test_invalid_yaml_is_a_plan_error() -> None:
    """Broken YAML raises PlanError, not a YAML exception."""
    with pytest.raises(PlanError):
        plan_from_text("format: [unclosed")
