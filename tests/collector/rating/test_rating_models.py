"""Worked examples per price model: the same numbers as docs/pricing.md."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from collector.rating import LineKind, load_plan, parse_plan, rate_quantity
from tests.collector.rating.rating_support import amounts, engine_lines, reference_lines

EXAMPLES = Path(__file__).parents[3] / "collector" / "rating" / "examples"
D = Decimal


def test_per_unit_rounds_the_line_half_up_once() -> None:
    """1234.5 kWh x 0.2535 = 312.94575, billed 312.95 with the exact amount kept."""
    (line,) = rate_quantity(load_plan(EXAMPLES / "per_unit.yaml"), D("1234.5"))
    assert (line.amount_unrounded, line.amount) == (D("312.94575"), D("312.95"))


def test_per_unit_converts_the_meter_unit_exactly() -> None:
    """1,234,500 Wh on a kWh price is 1234.5 kWh."""
    (line,) = rate_quantity(load_plan(EXAMPLES / "per_unit.yaml"), D("1234500"), unit="Wh")
    assert (line.quantity, line.amount) == (D("1234.5"), D("312.95"))


def test_graduated_prices_each_tier_and_adds_the_flat_fee_of_a_reached_tier() -> None:
    """620 kWh: 100 x 0.30 + 400 x 0.25 + 120 x 0.20 + 5.00 fee = 159.00."""
    lines = rate_quantity(load_plan(EXAMPLES / "graduated.yaml"), D(620))
    assert amounts(lines) == [
        ("energy/tier/None/0", D("30.00")),
        ("energy/tier/None/1", D("100.00")),
        ("energy/tier/None/2", D("24.00")),
        ("energy/flat_fee/None/2", D("5.00")),
    ]


def test_graduated_quantity_on_a_bound_does_not_reach_the_next_tier() -> None:
    """Exactly 100 kWh fills tier 1 ([0, 100)) and does not reach tier 2."""
    lines = rate_quantity(load_plan(EXAMPLES / "graduated.yaml"), D(100))
    assert amounts(lines) == [("energy/tier/None/0", D("30.00"))]


def test_volume_puts_a_bound_quantity_in_the_next_tier() -> None:
    """Exactly 1000 messages are in tier 2 ([1000, 10000)): 1000 x 0.008 = 8.00."""
    lines = rate_quantity(load_plan(EXAMPLES / "volume.yaml"), D(1000))
    assert amounts(lines) == [("messages/usage/None/1", D("8.00"))]


def test_volume_bills_all_units_at_the_reached_tier_plus_its_fee() -> None:
    """12,345 messages x 0.005 = 61.725 -> 61.73 (half up), plus the 10.00 fee."""
    lines = rate_quantity(load_plan(EXAMPLES / "volume.yaml"), D(12345))
    assert amounts(lines) == [
        ("messages/usage/None/2", D("61.73")),
        ("messages/flat_fee/None/2", D("10.00")),
    ]
    assert lines[0].amount_unrounded == D("61.725")


def test_package_bills_every_started_package_after_included_units() -> None:
    """4,500.5 MB - 2,000 included = 2,500.5 MB -> 3 packages x 5.00 = 15.00."""
    lines = rate_quantity(load_plan(EXAMPLES / "package.yaml"), D("4500.5"))
    assert amounts(lines) == [
        ("data/included/None/None", D("0.00")),
        ("data/package/None/None", D("15.00")),
    ]
    assert lines[1].quantity == 3


def test_package_boundaries() -> None:
    """3000 MB is one package; 3000.000001 MB starts a second; 2000 MB costs nothing."""
    plan = load_plan(EXAMPLES / "package.yaml")
    assert [rate_quantity(plan, D(q))[1].quantity for q in ("2000", "3000", "3000.000001")] == [
        0,
        1,
        2,
    ]


def test_minimum_commitment_tops_up_usage_below_it() -> None:
    """130 kWh - 10 included = 120 x 0.24 = 28.80 usage -> 21.20 true-up to 50.00."""
    lines = rate_quantity(load_plan(EXAMPLES / "subscription.yaml"), D(130))
    assert amounts(lines) == [
        ("base/recurring/None/None", D("29.00")),
        ("energy/included/None/None", D("0.00")),
        ("energy/usage/None/None", D("28.80")),
        ("minimum/minimum_commitment/None/None", D("21.20")),
    ]


def test_minimum_commitment_adds_nothing_when_usage_exceeds_it() -> None:
    """At 260 kWh usage is 60.00, above the 50.00 minimum: no true-up line."""
    lines = rate_quantity(load_plan(EXAMPLES / "subscription.yaml"), D(260))
    assert LineKind.MINIMUM not in {li.kind for li in lines}


def test_recurring_fee_is_prorated_by_days() -> None:
    """10 days of a 30-day cycle: 29.00 x 10 / 30 = 9.666... -> 9.67."""
    plan = load_plan(EXAMPLES / "subscription.yaml")
    day = 86_400
    start = 1_780_272_000  # 2026-06-01T00:00Z
    usage: dict[str, tuple[str, int, list[tuple[int, int, float]]]] = {"default": ("kWh", 900, [])}
    for lines in (
        engine_lines(plan, [(start, start + 10 * day)], usage, cycles=[(start, start + 30 * day)]),
        reference_lines(
            plan, [(start, start + 10 * day)], usage, cycles=[(start, start + 30 * day)]
        ),
    ):
        fee = lines[0][0]
        assert (fee.quantity, fee.amount, fee.amount_unrounded.quantize(D("0.0001"))) == (
            D(10),
            D("9.67"),
            D("9.6667"),
        )


def test_jpy_lines_round_to_whole_yen_and_kwd_to_fils() -> None:
    """The minor unit comes from ISO 4217: JPY 0 decimals, KWD 3."""
    base = {"format": "tally.plan/v1", "id": "x", "version": 1}

    def line(cur: str) -> Decimal:
        plan = parse_plan(
            {
                **base,
                "currency": cur,
                "charges": [{"type": "per_unit", "id": "e", "unit": "kWh", "price": "0.12345"}],
            }
        )
        return rate_quantity(plan, D("10.5"))[0].amount

    assert (line("JPY"), line("KWD"), line("EUR")) == (D(1), D("1.296"), D("1.30"))
