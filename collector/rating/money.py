"""Money and quantity resolution: the two rounding rules of rating, in one place.

* **Quantities** enter rating as float64 interval readings. Each reading is turned into an
  integer number of **micro-units** (``QUANTITY_EXPONENT`` = 6 decimals of the meter's unit) by
  rounding ``value * 1e6`` half to even. From there on every sum, conversion and tier split is
  exact integer / Decimal arithmetic. A per-charge total converted to the charge's billing unit
  (e.g. Wh → kWh, × CT ratio) is rounded half to even to 6 decimals of the billing unit, once.
* **Amounts** are exact (quantity × price with no rounding). Each invoice line is rounded
  **once** to the currency's minor unit, **half away from zero** (``ROUND_HALF_UP``), the rule of
  Lago and OpenMeter and the "commercial rounding" billing staff and customers check invoices
  with. The exact amount is kept beside the rounded one so that taxes and audits can use it.
  Half-even would remove a statistical bias, but with one rounding per line the bias is at most
  half a minor unit per line and customers cannot reproduce half-even by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

from collector.rating.currencies import minor_unit_exponent

QUANTITY_EXPONENT = 6
QUANTUM = Decimal(1).scaleb(-QUANTITY_EXPONENT)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money in a currency (ISO 4217 code); never a float."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money amount must be a Decimal, got {type(self.amount).__name__}")
        minor_unit_exponent(self.currency)

    @property
    def minor_units(self) -> int:
        """The amount as an integer number of minor units (must already be rounded)."""
        scaled = self.amount.scaleb(minor_unit_exponent(self.currency))
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{self} is not a whole number of minor units")
        return int(scaled)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """Money of ``minor`` minor units (cents) of ``currency``."""
        return cls(Decimal(minor).scaleb(-minor_unit_exponent(currency)), currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def quantize_reading(value: float) -> int:
    """A float reading as integer micro-units: ``value * 1e6`` rounded half to even."""
    return round(value * 1e6)


def quantize_quantity(value: Decimal | Fraction) -> Decimal:
    """An exact quantity rounded half to even to the quantity resolution (1e-6)."""
    if isinstance(value, Fraction):
        num = value.numerator * 10**QUANTITY_EXPONENT
        q, r = divmod(num, value.denominator)
        twice = 2 * r
        if twice > value.denominator or (twice == value.denominator and q % 2 == 1):
            q += 1
        return Decimal(q).scaleb(-QUANTITY_EXPONENT)
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


def round_amount(amount: Decimal | Fraction, currency: str) -> Decimal:
    """An exact line amount rounded once, half away from zero, to the currency's minor unit."""
    exponent = minor_unit_exponent(currency)
    if isinstance(amount, Fraction):
        scaled = amount * 10**exponent
        sign = -1 if scaled < 0 else 1
        mag = abs(scaled)
        q, r = divmod(mag.numerator, mag.denominator)
        if 2 * r >= mag.denominator:
            q += 1
        return Decimal(sign * q).scaleb(-exponent)
    return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)
