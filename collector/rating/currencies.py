"""ISO 4217 currencies known to the rating engine, with their minor-unit exponents.

The exponent is the number of decimals of the currency's minor unit (EUR 2 → cents, JPY 0,
KWD 3 → fils). A plan in a currency that is not in this table is rejected (``PlanError``).
"""

from __future__ import annotations

from types import MappingProxyType

# fmt: off
MINOR_UNIT_EXPONENTS: MappingProxyType[str, int] = MappingProxyType(
    {
        # exponent 2
        "AED": 2, "ARS": 2, "AUD": 2, "BGN": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2,
        "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
        "IDR": 2, "ILS": 2, "INR": 2, "MAD": 2, "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2,
        "NZD": 2, "PEN": 2, "PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "RON": 2, "RSD": 2,
        "RUB": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "UAH": 2,
        "USD": 2, "ZAR": 2, "KES": 2, "BDT": 2, "LKR": 2,
        # exponent 0
        "CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0, "UGX": 0, "VND": 0, "XAF": 0,
        "XOF": 0, "XPF": 0,
        # exponent 3
        "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    }
)
# fmt: on


def minor_unit_exponent(code: str) -> int:
    """Decimals of the minor unit of ``code``; ``KeyError`` if the currency is unknown."""
    return MINOR_UNIT_EXPONENTS[code]
