"""Billing periods: calendar months (or monthly anniversaries) in the customer's time zone.

A period is half-open, ``[start, end)``, defined by local wall-clock midnights and converted to
UTC with the customer's IANA zone, so a March period in Europe/Amsterdam lasts 743 hours and an
October one 745. ``PeriodKey`` names a period independently of the zone ("2026-03"): the close of
"2026-03" bills every customer for *their* March.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.errors import ValidationFailed

_KEY_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class PeriodKey:
    """A monthly period by year and month, e.g. ``PeriodKey.parse("2026-03")``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1970 <= self.year <= 9998:
            raise ValidationFailed(f"invalid period {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> PeriodKey:
        m = _KEY_RE.match(text.strip())
        if not m:
            raise ValidationFailed(f"period must look like YYYY-MM, got {text!r}")
        return cls(int(m[1]), int(m[2]))

    def next(self) -> PeriodKey:
        return PeriodKey(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> PeriodKey:
        return PeriodKey(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValidationFailed if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(f"unknown time zone {name!r}") from exc


def _anchor_date(year: int, month: int, anchor_day: int) -> date:
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # Midnight may not exist (a DST jump at 00:00, e.g. America/Havana); fold=0 plus a UTC
    # round trip normalises it to the first existing instant after the gap.
    local = datetime.combine(day, time(0), tzinfo=tz)
    return local.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """One customer's period: local dates ``[first_day, end_day)`` and the same bounds in UTC."""

    key: PeriodKey
    time_zone: str
    first_day: date
    end_day: date  # exclusive
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days

    def local_days_between(self, a: datetime, b: datetime) -> float:
        """Wall-clock days from ``a`` to ``b`` (UTC instants) in the period's zone.

        Used for proration: ten local days are ten days even when one of them has 23 hours.
        """
        tz = zone(self.time_zone)
        la = a.astimezone(tz).replace(tzinfo=None)
        lb = b.astimezone(tz).replace(tzinfo=None)
        return (lb - la) / timedelta(days=1)

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def period_for(key: PeriodKey, time_zone: str, anchor_day: int = 1) -> BillingPeriod:
    """The period ``key`` for a customer in ``time_zone`` whose cycle starts on ``anchor_day``.

    ``anchor_day=1`` gives calendar months; 2..31 gives anniversary periods, clamped to short
    months (an anchor of 31 starts on 28/29 February).
    """
    if not 1 <= anchor_day <= 31:
        raise ValidationFailed(f"billing anchor day must be 1..31, got {anchor_day}")
    tz = zone(time_zone)
    first = _anchor_date(key.year, key.month, anchor_day)
    nxt = key.next()
    end = _anchor_date(nxt.year, nxt.month, anchor_day)
    return BillingPeriod(
        key=key,
        time_zone=time_zone,
        first_day=first,
        end_day=end,
        start=_local_midnight(first, tz),
        end=_local_midnight(end, tz),
    )
