"""Money, currencies and the two rounding rules."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from collector.rating import (
    MINOR_UNIT_EXPONENTS,
    Money,
    quantize_quantity,
    quantize_reading,
    round_amount,
)

D = Decimal


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("EUR", 2),
        ("USD", 2),
        ("GBP", 2),
        ("CHF", 2),
        ("JPY", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("SEK", 2),
        ("NOK", 2),
        ("DKK", 2),
        ("PLN", 2),
        ("CZK", 2),
        ("CAD", 2),
        ("AUD", 2),
        ("INR", 2),
        ("CNY", 2),
        ("BRL", 2),
        ("ZAR", 2),
    ],
)
def test_currency_table_has_iso_4217_minor_units(code: str, exponent: int) -> None:
    """The common currencies are known with their ISO 4217 exponent."""
    assert MINOR_UNIT_EXPONENTS[code] == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        (D("61.725"), "EUR", D("61.73")),
        (D("61.715"), "EUR", D("61.72")),
        (D("0.005"), "EUR", D("0.01")),
        (D("0.0049999"), "EUR", D("0.00")),
        (D("1.5"), "JPY", D("2")),
        (D("2.5"), "JPY", D("3")),
        (D("1.2965"), "KWD", D("1.297")),
        (Fraction(29 * 10, 30), "EUR", D("9.67")),
        (Fraction(1, 200), "EUR", D("0.01")),
    ],
)
def test_lines_round_half_away_from_zero(
    amount: Decimal | Fraction, currency: str, rounded: Decimal
) -> None:
    """Line amounts round half up (away from zero) to the minor unit, never half to even."""
    assert round_amount(amount, currency) == rounded


@pytest.mark.parametrize(
    ("value", "micro"), [(0.0000005, 0), (0.0000015, 2), (0.0000025, 2), (1234.5, 1_234_500_000)]
)
def test_readings_quantise_half_even_to_micro_units(value: float, micro: int) -> None:
    """Float readings become integer micro-units, ties to even."""
    assert quantize_reading(value) == micro


def test_exact_quantities_quantise_half_even() -> None:
    """A converted quantity is rounded half to even to 6 decimals."""
    assert (
        quantize_quantity(Fraction(5, 10**7)),
        quantize_quantity(Fraction(15, 10**7)),
        quantize_quantity(D("2.0000025")),
    ) == (D(0), D("0.000002"), D("2.000002"))


def test_money_refuses_floats() -> None:
    """Money amounts are Decimal only."""
    with pytest.raises(TypeError):
        Money(0.1, "EUR")  # type: ignore[arg-type]


def test_money_minor_units_round_trip() -> None:
    """12345 cents are 123.45 EUR and back."""
    m = Money.from_minor(12345, "EUR")
    assert (m.amount, m.minor_units, str(m)) == (D("123.45"), 12345, "123.45 EUR")


def test_money_refuses_unknown_currency() -> None:
    """A currency outside the table is a KeyError."""
    with pytest.raises(KeyError):
        Money(D(1), "XXX")
