"""Numbers, money, dates and times in the customer's language, zone and currency (Babel).

One ``LocalFormat`` per page: built from the customer's ``language`` and ``time_zone``. Money is
formatted from the stored ``Decimal`` (already rounded to the currency's minor unit), never
through a float. Hours carry their UTC offset where a wall-clock time could be ambiguous (the
hour that repeats when clocks go back), e.g. ``02:00 +02:00`` and ``02:00 +01:00``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal, format_percent

__all__ = ["LocalFormat"]

_LOCALES = {"en": "en_GB", "nl": "nl_NL", "de": "de_DE", "fr": "fr_FR"}


@dataclass(frozen=True, slots=True)
class LocalFormat:
    """How one customer reads figures: ``language`` (en, nl, de, fr) and ``time_zone``."""

    language: str
    time_zone: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(_LOCALES.get(self.language, "en_GB"))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def quantity(self, value: float, unit: str) -> str:
        """``1,234.50 kWh`` (en) / ``1.234,50 kWh`` (nl): two decimals."""
        return f"{format_decimal(value, '#,##0.00', locale=self.locale)} {unit}".rstrip()

    def number(self, value: Decimal | float, digits: int = 6) -> str:
        """A quantity or unit price with at most ``digits`` decimals."""
        pattern = "#,##0." + "#" * digits if digits else "#,##0"
        return format_decimal(value, pattern, locale=self.locale)

    def money(self, amount: Decimal, currency: str) -> str:
        """``€84.87`` (en) / ``€ 84,87`` (nl) from the stored decimal amount."""
        return format_currency(amount, currency, locale=self.locale)

    def percent(self, share: float) -> str:
        """A 0..1 share as a whole percentage; a non-zero share never shows as 0 %."""
        if 0 < share < 0.01:
            return "<" + format_percent(0.01, locale=self.locale)
        return format_percent(share, locale=self.locale)

    def day(self, instant: datetime | date, style: str = "medium") -> str:
        """A calendar day (``10 Apr 2026``) on the customer's calendar."""
        d = instant.astimezone(self.zone).date() if isinstance(instant, datetime) else instant
        return format_date(d, style, locale=self.locale)

    def day_pattern(self, instant: datetime, pattern: str) -> str:
        """A day in a CLDR pattern (``EEE d`` for chart titles)."""
        return format_datetime(instant.astimezone(self.zone), pattern, locale=self.locale)

    def clock(self, instant: datetime, *, seconds: bool = False) -> str:
        """Wall-clock time in the customer's zone (``12:04:31`` with seconds)."""
        pattern = "HH:mm:ss" if seconds else "HH:mm"
        return format_time(instant.astimezone(self.zone), pattern, locale=self.locale)

    def offset(self, instant: datetime) -> str:
        """The zone's UTC offset at ``instant``: ``+02:00``."""
        off = instant.astimezone(self.zone).utcoffset()
        minutes = int(off.total_seconds() // 60) if off is not None else 0
        sign = "+" if minutes >= 0 else "-"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

    def hour(self, instant: datetime) -> str:
        """An hour or quarter hour with its offset: ``02:00 +01:00``."""
        return f"{self.clock(instant)} {self.offset(instant)}"

    def moment(self, instant: datetime, *, seconds: bool = False) -> str:
        """Day and time: ``10 Apr 2026, 12:04:31``."""
        return f"{self.day(instant)}, {self.clock(instant, seconds=seconds)}"

    def month(self, first_day: date) -> str:
        """``April 2026`` / ``april 2026``."""
        return format_date(first_day, "LLLL yyyy", locale=self.locale)
