"""Money rounding and invoice totals (pure).

The rule, in one place:
  * every line keeps its exact amount (``amount_unrounded``) and is rounded **once** to the
    currency's minor unit, half away from zero (``ROUND_HALF_UP`` in ``decimal`` terms);
  * tax is computed on the **unrounded** subtotal (sum of the exact line amounts) and rounded once;
  * the invoice total is the sum of the rounded lines plus the rounded tax, so that the printed
    lines, the printed tax and the printed total always add up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from collector.errors import ValidationFailed

# ISO 4217 minor units for currencies that differ from 2; everything else has 2.
_MINOR_UNITS: dict[str, int] = {
    "BHD": 3,
    "CLP": 0,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "OMR": 3,
    "PYG": 0,
    "TND": 3,
    "UGX": 0,
    "VND": 0,
    "XAF": 0,
    "XOF": 0,
}


def minor_units(currency: str) -> int:
    """Number of decimals of ``currency`` (ISO 4217 code)."""
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise ValidationFailed(f"currency must be an ISO 4217 code like 'EUR', got {currency!r}")
    return _MINOR_UNITS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half away from zero to the minor unit of ``currency``."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    subtotal: Decimal  # sum of rounded lines (what the reader adds up)
    subtotal_unrounded: Decimal  # sum of exact lines (the tax base)
    tax: Decimal  # rounded once
    total: Decimal  # subtotal + tax


def compute_totals(
    lines: Iterable[tuple[Decimal, Decimal]], tax_rate: Decimal, currency: str
) -> InvoiceTotals:
    """Totals of ``(amount_unrounded, amount)`` line pairs at ``tax_rate`` (0.21 = 21%)."""
    if tax_rate < 0 or tax_rate >= 1:
        raise ValidationFailed(f"tax rate must be in [0, 1), got {tax_rate}")
    exact = Decimal(0)
    rounded = Decimal(0)
    for unrounded, amount in lines:
        exact += unrounded
        rounded += amount
    tax = round_money(exact * tax_rate, currency)
    return InvoiceTotals(subtotal=rounded, subtotal_unrounded=exact, tax=tax, total=rounded + tax)
