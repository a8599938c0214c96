"""Tier notation and defaults that match Stripe, Lago, OpenMeter and Kill Bill."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.errors import PlanError, RatingError
from collector.rating import LineKind, load_plan, parse_plan, rate_quantity
from tests.collector.rating.rating_support import amounts, engine_lines, reference_lines

EXAMPLES = Path(__file__).parents[3] / "collector" / "rating" / "examples"
D = Decimal
DAY = 86_400
T0 = 1_780_272_000  # 2026-06-01T00:00Z


def _plan(*charges: dict[str, Any], currency: str = "EUR") -> Any:
    return parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "p",
            "version": 1,
            "currency": currency,
            "charges": list(charges),
        }
    )


def _volume(tiers: list[dict[str, Any]]) -> Any:
    return _plan({"type": "volume", "id": "seats", "unit": "unit", "tiers": tiers}, currency="USD")


def test_a_naively_copied_volume_tier_changes_the_bill_at_its_edge() -> None:
    """Stripe's 'up_to 5 at 7.00, then 6.50' copied as from/to [0,5) [5,..) bills 5 units at
    6.50 = 32.50; written with up_to (inclusive) it bills 5 x 7.00 = 35.00 as Stripe does."""
    naive = _volume([{"from": 0, "to": 5, "price": "7.00"}, {"from": 5, "price": "6.50"}])
    assert amounts(rate_quantity(naive, D(5))) == [("seats/usage/None/1", D("32.50"))]
    up_to = load_plan(EXAMPLES / "volume_up_to.yaml")
    assert amounts(rate_quantity(up_to, D(5))) == [("seats/usage/None/0", D("35.00"))]


@pytest.mark.parametrize(
    ("quantity", "tier", "amount"),
    [
        ("0", 0, "0.00"),
        ("4.5", 0, "31.50"),
        ("5", 0, "35.00"),
        ("5.000001", 1, "32.50"),
        ("6", 1, "39.00"),
    ],
)
def test_up_to_bounds_are_inclusive(quantity: str, tier: int, amount: str) -> None:
    """A quantity equal to an up_to bound stays in the tier that ends there; one unit-millionth
    more moves to the next tier; 0 is in the first tier."""
    (line,) = rate_quantity(load_plan(EXAMPLES / "volume_up_to.yaml"), D(quantity))
    assert (line.tier, line.amount) == (tier, D(amount))


def test_up_to_and_from_to_describe_the_same_graduated_bill() -> None:
    """Graduated tiers hold the same units in either notation (
    first 5 at 5.00, next 5 at 4.00, then 3.00): 12 units = 25 + 20 + 6 = 51.00."""
    up = _plan(
        {
            "type": "graduated",
            "id": "g",
            "unit": "unit",
            "tiers": [
                {"up_to": 5, "price": "5.00"},
                {"up_to": 10, "price": "4.00"},
                {"up_to": "inf", "price": "3.00"},
            ],
        }
    )
    half = _plan(
        {
            "type": "graduated",
            "id": "g",
            "unit": "unit",
            "tiers": [
                {"from": 0, "to": 5, "price": "5.00"},
                {"from": 5, "to": 10, "price": "4.00"},
                {"from": 10, "price": "3.00"},
            ],
        }
    )
    for q in ("0", "5", "10", "12"):
        assert amounts(rate_quantity(up, D(q))) == amounts(rate_quantity(half, D(q)))
    assert sum(li.amount for li in rate_quantity(up, D(12))) == D("51.00")


@pytest.mark.parametrize(
    ("tiers", "path", "message"),
    [
        ([{"up_to": 5, "price": 1}, {"from": 5, "price": 1}], "tiers[1]", "every tier"),
        ([{"up_to": 5, "price": 1}, {"up_to": 9, "price": 1}], "tiers[1].up_to", "open"),
        ([{"up_to": "inf", "price": 1}, {"up_to": 9, "price": 1}], "tiers[0].up_to", "last"),
        (
            [{"up_to": 9, "price": 1}, {"up_to": 5, "price": 1}, {"up_to": None, "price": 1}],
            "tiers[1].to",
            "ascend",
        ),
    ],
)
def test_bad_up_to_tiers_are_refused_with_their_path(
    tiers: list[dict[str, Any]], path: str, message: str
) -> None:
    """Mixed notations, a closed last tier, an open middle tier and falling bounds are errors."""
    with pytest.raises(PlanError, match=message) as err:
        _volume(tiers)
    assert err.value.path == f"charges[0].{path}"


def test_half_open_bounds_with_up_to_are_refused() -> None:
    """'bounds: half_open' contradicts up_to tiers."""
    with pytest.raises(PlanError, match="inclusive"):
        _plan(
            {
                "type": "volume",
                "id": "v",
                "unit": "unit",
                "bounds": "half_open",
                "tiers": [{"up_to": 1, "price": 1}, {"up_to": "inf", "price": 1}],
            }
        )


FEE_TIERS = [
    {"from": 0, "to": 100, "price": "0.10", "flat_fee": "10.00"},
    {"from": 100, "price": "0.05"},
]


@pytest.mark.parametrize("kind", ["graduated", "volume"])
def test_first_tier_flat_fee_is_billed_at_zero_usage_by_default(kind: str) -> None:
    """As Stripe, OpenMeter and Lago do: no usage still pays the first tier's 10.00 fee."""
    plan = _plan({"type": kind, "id": "c", "unit": "kWh", "tiers": FEE_TIERS})
    lines = rate_quantity(plan, D(0))
    assert [(li.kind, li.amount) for li in lines if li.kind is LineKind.FLAT_FEE] == [
        (LineKind.FLAT_FEE, D("10.00"))
    ]
    assert sum(li.amount for li in lines) == D("10.00")


@pytest.mark.parametrize("kind", ["graduated", "volume"])
def test_flat_fee_at_zero_can_be_switched_off(kind: str) -> None:
    """flat_fee_at_zero: false bills nothing at zero usage and the fee from the first unit."""
    plan = _plan(
        {"type": kind, "id": "c", "unit": "kWh", "tiers": FEE_TIERS, "flat_fee_at_zero": False}
    )
    assert sum(li.amount for li in rate_quantity(plan, D(0))) == D("0.00")
    assert sum(li.amount for li in rate_quantity(plan, D("0.5"))) == D("10.05")


SUBSCRIPTION = [
    {"type": "recurring", "id": "base", "amount": "29.00"},
    {"type": "per_unit", "id": "energy", "unit": "kWh", "price": "0.24", "included": 10},
]


def test_minimum_can_count_the_subscription_fee() -> None:
    """Lago's rule: 29.00 fee + 28.80 usage = 57.80 >= 50.00, no true-up; without the option
    usage alone (28.80) is topped up by 21.20."""
    plain = _plan(*SUBSCRIPTION, {"type": "minimum_commitment", "id": "min", "amount": "50.00"})
    counted = _plan(
        *SUBSCRIPTION,
        {"type": "minimum_commitment", "id": "min", "amount": "50.00", "includes_recurring": True},
    )
    assert amounts(rate_quantity(plain, D(130)))[-1] == (
        "min/minimum_commitment/None/None",
        D("21.20"),
    )
    assert LineKind.MINIMUM not in {li.kind for li in rate_quantity(counted, D(130))}
    # 40 kWh: 29.00 + 7.20 = 36.20 -> true-up 13.80 to reach 50.00
    assert rate_quantity(counted, D(40))[-1].amount == D("13.80")


def test_minimum_is_prorated_by_days() -> None:
    """10 days of a 30-day cycle commit to 50.00 x 10 / 30 = 16.666... -> 16.67; 20 kWh of
    usage (10 chargeable = 2.40) tops up 14.27 (the fee prorates to 9.67 alongside)."""
    plan = _plan(
        *SUBSCRIPTION,
        {"type": "minimum_commitment", "id": "min", "amount": "50.00", "prorate": True},
    )
    usage = {"default": ("kWh", 900, [(0, T0, 20.0)])}
    period, cycle = [(T0, T0 + 10 * DAY)], [(T0, T0 + 30 * DAY)]
    for lines in (
        engine_lines(plan, period, usage, cycles=cycle),
        reference_lines(plan, period, usage, cycles=cycle),
    ):
        assert amounts(lines[0]) == [
            ("base/recurring/None/None", D("9.67")),
            ("energy/included/None/None", D("0.00")),
            ("energy/usage/None/None", D("2.40")),
            ("min/minimum_commitment/None/None", D("14.27")),
        ]


NEG_ROWS = [(0, T0, 5.0), (0, T0 + 900, -2.0), (0, T0 + 1800, 4.0), (0, T0 + 2700, -0.5)]


def test_negative_readings_are_refused_by_default() -> None:
    """No silent clamping: a negative reading fails the run with the meter and the count."""
    plan = _plan({"type": "per_unit", "id": "energy", "unit": "kWh", "price": "0.20"})
    usage = {"default": ("kWh", 900, NEG_ROWS)}
    with pytest.raises(RatingError, match="2 negative reading"):
        engine_lines(plan, [(T0, T0 + DAY)], usage)
    with pytest.raises(RatingError, match="negative"):
        reference_lines(plan, [(T0, T0 + DAY)], usage)


def test_flagged_negative_readings_show_on_their_own_line() -> None:
    """negative_usage: flag bills the 9 kWh of positive readings and shows the -2.5 kWh left
    out on a 'negative' line at price 0, for staff review."""
    plan = _plan(
        {
            "type": "per_unit",
            "id": "energy",
            "unit": "kWh",
            "price": "0.20",
            "negative_usage": "flag",
        }
    )
    usage = {"default": ("kWh", 900, NEG_ROWS)}
    for lines in (
        engine_lines(plan, [(T0, T0 + DAY)], usage),
        reference_lines(plan, [(T0, T0 + DAY)], usage),
    ):
        assert [(li.kind, li.quantity, li.amount) for li in lines[0]] == [
            (LineKind.USAGE, D(9), D("1.80")),
            (LineKind.NEGATIVE, D("-2.5"), D("0.00")),
        ]
