"""Amounts, prices, quantities, rates and dates written for a customer's locale (Babel).

The locale is the customer's invoice language in its billing country (``nl`` + ``NL`` →
``nl_NL``: "€ 84,87", "31 maart 2026"); a pair CLDR does not know falls back to the language.
Amounts are Decimals already rounded by ``money``; nothing here rounds money again except
``money``, which prints the currency's minor unit of an already rounded amount.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent


def babel_locale(language: str, country: str) -> str:
    """``language_COUNTRY`` when CLDR has it, else ``language`` (else ``en``)."""
    for candidate in (f"{language}_{country}", language):
        try:
            Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
        return candidate
    return "en"


def money(amount: Decimal, currency: str, locale: str) -> str:
    """A rounded amount with its currency: ``money(Decimal("84.87"), "EUR", "nl_NL")`` is
    ``"€ 84,87"`` (with a no-break space)."""
    return format_currency(amount, currency, locale=locale)


def price(amount: Decimal, currency: str, locale: str) -> str:
    """A unit price with all its significant decimals (at least the currency's)."""
    return format_currency(amount.normalize(), currency, locale=locale, decimal_quantization=False)


def quantity(value: Decimal, unit: str, locale: str) -> str:
    """``2.972 kWh`` in nl_NL: every significant decimal, grouped for the locale."""
    text = format_decimal(value.normalize(), locale=locale, decimal_quantization=False)
    return f"{text} {unit}".strip()


def percent(rate: Decimal, locale: str) -> str:
    """A rate given as a fraction (0.21) as the locale writes it: ``21%``, ``21 %``."""
    return format_percent(rate, locale=locale, decimal_quantization=False)


def day(value: date, locale: str) -> str:
    """A date in the locale's long form: ``31 maart 2026``, ``31. März 2026``."""
    return format_date(value, format="long", locale=locale)
