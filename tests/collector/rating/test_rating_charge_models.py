"""Charge models beyond the classic four: blocks inside tiers, quantity rounding, spend caps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from collector.errors import PlanError, RatingError
from collector.rating import LineKind, parse_plan, rate_quantity
from collector.rating.progressive import interim_due
from tests.collector.rating.rating_support import (
    amounts,
    comparable,
    engine_lines,
    reference_lines,
)

D = Decimal
T0 = 1_780_272_000  # 2026-06-01T00:00Z


def _plan(*charges: dict[str, Any]) -> Any:
    return parse_plan(
        {"format": "tally.plan/v1", "id": "p", "version": 1, "currency": "EUR", "charges": charges}
    )


BLOCK_TIERS = [
    {"up_to": 10, "price": "1.00", "block": 5},
    {"up_to": "inf", "price": "0.80", "block": 10},
]


def test_blocks_inside_graduated_tiers_are_kill_bills_all_tiers() -> None:
    """25 units: tier 1 holds 10 = 2 blocks of 5 x 1.00; tier 2 holds 15 = 2 started blocks
    of 10 x 0.80; total 3.60."""
    plan = _plan({"type": "graduated", "id": "api", "unit": "request", "tiers": BLOCK_TIERS})
    lines = rate_quantity(plan, D(25))
    assert [(li.quantity, li.unit, li.amount) for li in lines] == [
        (D(2), "block of 5 request", D("2.00")),
        (D(2), "block of 10 request", D("1.60")),
    ]


def test_blocks_inside_volume_tiers_are_kill_bills_top_tier() -> None:
    """25 units reach tier 2: all 25 in started blocks of 10 at 0.80 = 3 x 0.80 = 2.40;
    10 units stay in tier 1: 2 blocks of 5 x 1.00 = 2.00."""
    plan = _plan({"type": "volume", "id": "api", "unit": "request", "tiers": BLOCK_TIERS})
    assert amounts(rate_quantity(plan, D(25))) == [("api/usage/None/1", D("2.40"))]
    assert amounts(rate_quantity(plan, D(10))) == [("api/usage/None/0", D("2.00"))]


def _rounded(mode: str, step: str, included: str = "0") -> Any:
    return _plan(
        {
            "type": "per_unit",
            "id": "data",
            "unit": "GB",
            "price": "10.00",
            "included": included,
            "rounding": {"mode": mode, "precision": 0, "step": step},
        }
    )


@pytest.mark.parametrize(
    ("mode", "step", "included", "amount"),
    [
        ("ceil", "after_conversion", "0", "20.00"),  # 1.5 GB -> 2 GB
        ("ceil", "before_conversion", "0", "15.00"),  # 1,500 MB stays 1,500 MB = 1.5 GB
        ("floor", "after_conversion", "0", "10.00"),  # 1.5 GB -> 1 GB
        ("round", "after_conversion", "0", "20.00"),  # 1.5 GB -> 2 GB (half away from zero)
        ("round", "after_conversion", "0.5", "15.00"),  # 2 GB - 0.5 included = 1.5 GB
        ("round", "after_allowance", "0.5", "10.00"),  # 1.5 - 0.5 = 1.0 GB -> 1 GB
    ],
)
def test_quantity_rounding_happens_at_the_stated_step(
    mode: str, step: str, included: str, amount: str
) -> None:
    """1,500 MB on a GB price of 10.00, rounded to whole GB at the step the plan states."""
    plan = _rounded(mode, step, included)
    usage = {"default": ("MB", 900, [(0, T0, 1500.0)])}
    for lines in (
        engine_lines(plan, [(T0, T0 + 86_400)], usage),
        reference_lines(plan, [(T0, T0 + 86_400)], usage),
    ):
        assert lines[0][-1].amount == D(amount)


def test_spend_cap_takes_the_charge_down_to_its_maximum() -> None:
    """300 kWh x 0.20 = 60.00 above a 50.00 cap: a cap line of -10.00; 100 kWh stays 20.00."""
    plan = _plan(
        {"type": "per_unit", "id": "energy", "unit": "kWh", "price": "0.20", "maximum": "50.00"}
    )
    assert amounts(rate_quantity(plan, D(300))) == [
        ("energy/usage/None/None", D("60.00")),
        ("energy/cap/None/None", D("-10.00")),
    ]
    assert [li.kind for li in rate_quantity(plan, D(100))] == [LineKind.USAGE]


@pytest.mark.parametrize(
    ("charge", "path"),
    [
        ({"maximum": "1.001"}, "charges[0].maximum"),
        ({"rounding": {"mode": "up"}}, "charges[0].rounding.mode"),
        ({"rounding": {"mode": "ceil", "precision": 7}}, "charges[0].rounding.precision"),
    ],
)
def test_bad_caps_and_roundings_are_refused(charge: dict[str, Any], path: str) -> None:
    """A cap finer than the currency, an unknown rounding mode or precision is a plan error."""
    with pytest.raises(PlanError) as err:
        _plan({"type": "per_unit", "id": "e", "unit": "kWh", "price": "1", **charge})
    assert err.value.path == path


PAYMENTS = [100.0, 250.0, 50.0, 1000.0, 20.0]  # five transactions in time order


def _percentage_lines(**fields: Any) -> list[list[Any]]:
    plan = _plan({"type": "percentage", "id": "pay", "meter": "payments", **fields})
    rows = [(0, T0 + 60 * i, a) for i, a in enumerate(PAYMENTS)]
    usage = {"payments": ("amount", 60, rows)}
    got = engine_lines(plan, [(T0, T0 + 86_400)], usage)
    want = reference_lines(plan, [(T0, T0 + 86_400)], usage)
    assert [[comparable(li) for li in s] for s in got] == [
        [comparable(li) for li in s] for s in want
    ]
    return got


def test_percentage_with_fixed_fee_free_transaction_and_per_transaction_bounds() -> None:
    """1.5% + 0.10 per transaction, the first free, each fee within 0.50..10.00: the charged
    250, 50, 1000, 20 pay 3.85, 0.85, 15.10 -> 10.00, 0.40 -> 0.50 = 15.20."""
    (lines,) = _percentage_lines(
        rate="1.5",
        fixed_fee="0.10",
        free_transactions=1,
        min_per_transaction="0.50",
        max_per_transaction="10.00",
    )
    assert [(li.kind, li.quantity, li.amount) for li in lines] == [
        (LineKind.PERCENTAGE, D(1320), D("19.80")),
        (LineKind.TRANSACTION_FEE, D(4), D("0.40")),
        (LineKind.TRANSACTION_MINIMUM, D(1), D("0.10")),
        (LineKind.TRANSACTION_MAXIMUM, D(1), D("-5.10")),
    ]
    assert sum(li.amount for li in lines) == D("15.20")


def test_percentage_free_amount_charges_the_excess_of_the_crossing_transaction() -> None:
    """300.00 free: 100 is free, 250 crosses (50 charged), then 50 + 1000 + 20: 1120 x 1.5%
    = 16.80 and 4 charged transactions x 0.10."""
    (lines,) = _percentage_lines(rate="1.5", fixed_fee="0.10", free_amount="300")
    assert [(li.quantity, li.amount) for li in lines] == [(D(1120), D("16.80")), (D(4), D("0.40"))]


def test_percentage_free_allowances_end_at_whichever_comes_first() -> None:
    """1 free transaction and 300.00 free: the count ends first, so 250 pays in full."""
    (lines,) = _percentage_lines(rate="1.5", free_transactions=1, free_amount="300")
    assert [(li.quantity, li.amount) for li in lines] == [(D(1320), D("19.80"))]


def test_percentage_needs_amount_readings() -> None:
    """A percentage of kWh is refused: the meter must report amounts."""
    plan = _plan({"type": "percentage", "id": "pay", "rate": "1"})
    usage = {"default": ("kWh", 60, [(0, T0, 1.0)])}
    with pytest.raises(RatingError, match="amount"):
        engine_lines(plan, [(T0, T0 + 86_400)], usage)


def _discounted(*discounts: dict[str, Any]) -> Any:
    return _plan(
        {"type": "recurring", "id": "base", "amount": "29.00"},
        {"type": "per_unit", "id": "energy", "unit": "kWh", "price": "0.24"},
        *discounts,
    )


def _rated(plan: Any, start: int = T0) -> list[Any]:
    usage = {"default": ("kWh", 900, [(0, start, 130.0)])}
    period = [(start, start + 30 * 86_400)]
    got = engine_lines(plan, period, usage)
    want = reference_lines(plan, period, usage)
    assert [[comparable(li) for li in s] for s in got] == [
        [comparable(li) for li in s] for s in want
    ]
    return got[0]


def test_percentage_discount_on_one_charge() -> None:
    """10% off energy: 130 x 0.24 = 31.20 -> discount -3.12; the fee is untouched."""
    lines = _rated(
        _discounted({"type": "discount", "id": "d", "percent": "10", "applies_to": ["energy"]})
    )
    assert amounts(lines)[-1] == ("d/discount/None/None", D("-3.12"))
    assert sum(li.amount for li in lines) == D("57.08")


def test_fixed_discount_on_the_invoice_never_goes_below_zero() -> None:
    """5.00 off the invoice (29.00 + 31.20) -> -5.00; 100.00 off -> only -60.20."""
    assert _rated(_discounted({"type": "discount", "id": "d", "amount": "5.00"}))[-1].amount == D(
        "-5.00"
    )
    lines = _rated(_discounted({"type": "discount", "id": "d", "amount": "100.00"}))
    assert (lines[-1].amount, sum(li.amount for li in lines)) == (D("-60.20"), D("0.00"))


def test_coupon_applies_only_to_periods_starting_in_its_validity() -> None:
    """A coupon valid in June 2026 (Europe time zone of the plan: UTC here) discounts the
    period starting on 1 June and not the one starting on 1 July."""
    coupon = {
        "type": "discount",
        "id": "launch",
        "percent": "50",
        "valid_from": "2026-06-01",
        "valid_until": "2026-07-01",
    }
    plan = _discounted(coupon)
    assert _rated(plan)[-1].amount == D("-30.10")
    july = T0 + 30 * 86_400
    assert LineKind.DISCOUNT not in {li.kind for li in _rated(plan, july)}


def test_a_discount_on_an_unknown_charge_is_refused() -> None:
    """applies_to must name a charge of the plan."""
    with pytest.raises(PlanError) as err:
        _discounted({"type": "discount", "id": "d", "percent": "5", "applies_to": ["nope"]})
    assert err.value.path == "charges[2].applies_to[0]"


def _progressive() -> Any:
    return _plan(
        {"type": "per_unit", "id": "energy", "unit": "kWh", "price": "0.50"},
        {"type": "progressive_billing", "id": "interim", "thresholds": ["100.00", "500.00"]},
    )


@pytest.mark.parametrize(
    ("usage", "billed", "due"),
    [
        ("90.00", "0", None),  # below the first threshold
        ("150.00", "0", "150.00"),  # crossed 100: bill all usage so far
        ("400.00", "150.00", None),  # no new threshold since the last interim invoice
        ("620.00", "150.00", "470.00"),  # crossed 500: bill the rest
        ("1000.00", "620.00", None),  # no threshold above 500
    ],
)
def test_interim_invoice_is_due_when_usage_crosses_a_new_threshold(
    usage: str, billed: str, due: str | None
) -> None:
    """Lago's progressive billing: a threshold in (billed, usage] makes usage - billed due."""
    got = interim_due(_progressive(), D(usage), D(billed))
    assert got == (None if due is None else D(due))


def test_final_invoice_deducts_what_interim_invoices_billed() -> None:
    """1,400 kWh x 0.50 = 700.00 with 620.00 billed in advance: a -620.00 line, 80.00 due."""
    plan = _progressive()
    usage = {"default": ("kWh", 900, [(0, T0, 1400.0)])}
    period = [(T0, T0 + 86_400)]
    for lines in (
        engine_lines(plan, period, usage, billed=["620.00"]),
        reference_lines(plan, period, usage, billed=["620.00"]),
    ):
        assert amounts(lines[0]) == [
            ("energy/usage/None/None", D("700.00")),
            ("interim/billed_in_advance/None/None", D("-620.00")),
        ]


def test_several_taxes_per_charge_each_on_the_charge_amount() -> None:
    """1000 kWh x 0.25 = 250.00; a 2.5% levy 6.25 and a 0.125% surcharge 0.3125 -> 0.31,
    each on its own tax line computed from the untaxed 250.00."""
    plan = _plan(
        {
            "type": "per_unit",
            "id": "energy",
            "unit": "kWh",
            "price": "0.25",
            "taxes": [{"id": "levy", "percent": "2.5"}, {"id": "surcharge", "percent": "0.125"}],
        }
    )
    usage = {"default": ("kWh", 900, [(0, T0, 1000.0)])}
    for lines in (
        engine_lines(plan, [(T0, T0 + 86_400)], usage),
        reference_lines(plan, [(T0, T0 + 86_400)], usage),
    ):
        assert [(li.kind.value, li.quantity, li.amount) for li in lines[0]] == [
            ("usage", D(1000), D("250.00")),
            ("tax", D(250), D("6.25")),
            ("tax", D(250), D("0.31")),
        ]
