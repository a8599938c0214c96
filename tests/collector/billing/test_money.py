"""Invoice totals: each line rounded once, tax on the unrounded subtotal, rounded once."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from collector.billing.money import compute_totals, round_money

D = Decimal


def test_half_away_from_zero() -> None:
    """Halves round away from zero for charges and credits alike."""
    assert round_money(D("2.345"), "EUR") == D("2.35")
    assert round_money(D("-2.345"), "EUR") == D("-2.35")
    assert round_money(D("2.5"), "JPY") == D("3")
    assert round_money(D("1.0005"), "KWD") == D("1.001")


def test_tax_on_unrounded_subtotal_differs_from_tax_on_rounded_lines() -> None:
    """Ten lines of 2.004 at 21%: 10 x 2.00, tax 21% of 20.04 = 4.2084 -> 4.21, total 24.21."""
    lines = [(D("2.004"), D("2.00"))] * 10
    t = compute_totals(lines, D("0.21"), "EUR")
    assert t.subtotal == D("20.00")
    assert t.subtotal_unrounded == D("20.040")
    assert t.tax == D("4.21")  # per-line tax would give 10 x 0.42 = 4.20
    assert t.total == D("24.21")


def test_credit_lines_reduce_the_tax_base() -> None:
    """A credit line lowers subtotal and tax: 100.00 - 40.005 at 19% -> tax 11.40."""
    t = compute_totals([(D("100"), D("100.00")), (D("-40.005"), D("-40.01"))], D("0.19"), "EUR")
    assert t.subtotal == D("59.99")
    assert t.tax == D("11.40")  # 59.995 x 0.19 = 11.39905
    assert t.total == D("71.39")


amounts = st.decimals(
    min_value=D("-10000"), max_value=D("10000"), places=6, allow_nan=False, allow_infinity=False
)


@given(st.lists(amounts, max_size=30), st.decimals(min_value=0, max_value=D("0.5"), places=4))
def test_total_adds_up_and_stays_within_rounding_bounds(
    exact: list[Decimal], rate: Decimal
) -> None:
    """Total = rounded lines + rounded tax; tax is within half a cent of the exact tax."""
    lines = [(a, round_money(a, "EUR")) for a in exact]
    t = compute_totals(lines, rate, "EUR")
    assert t.total == sum((r for _, r in lines), D(0)) + t.tax
    assert abs(t.tax - sum(exact, D(0)) * rate) <= D("0.005")
    assert abs(t.subtotal - t.subtotal_unrounded) <= D("0.005") * len(lines)
