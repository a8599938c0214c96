"""How the portal writes numbers, money, shares and instants (in the customer's zone)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

__all__ = ["local", "money", "percent", "quantity"]


def quantity(value: float, unit: str) -> str:
    """``1,234.50 kWh``: two decimals, thousands separated."""
    return f"{value:,.2f} {unit}".rstrip()


def percent(share: float) -> str:
    """A 0..1 share as a whole percentage (``12%``); a non-zero share never shows as 0%."""
    pct = share * 100
    if 0 < pct < 1:
        return "<1%"
    return f"{pct:.0f}%"


def money(amount: Decimal, currency: str) -> str:
    """``1,234.56 EUR`` with the amount as stored (already rounded to the minor unit)."""
    return f"{amount:,} {currency}"


def local(instant: datetime, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``instant`` on the customer's wall clock."""
    return instant.astimezone(ZoneInfo(tz)).strftime(fmt)
