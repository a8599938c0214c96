"""Calendar windows of the portal in the customer's zone: the current billing period, and the
month (daily bars) or day (hourly bars) a meter page shows, with its neighbours."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from collector.billing.periods import BillingPeriod, PeriodKey, period_for, zone
from collector.errors import ValidationFailed
from collector.usage import Resolution

__all__ = ["MeterView", "current_period", "day_view", "month_view", "parse_view"]

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def current_period(now: datetime, tz: str, anchor_day: int = 1) -> BillingPeriod:
    """The customer's billing period that contains ``now``."""
    local = now.astimezone(zone(tz))
    key = PeriodKey(local.year, local.month)
    period = period_for(key, tz, anchor_day)
    if now < period.start:
        period = period_for(key.previous(), tz, anchor_day)
    elif now >= period.end:
        period = period_for(key.next(), tz, anchor_day)
    return period


def _midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone(tz)).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class MeterView:
    """What a meter page shows: ``[start, end)`` (UTC) at ``resolution``; ``prev``/``next``/
    ``up`` are the query strings of the neighbouring views (``up``: the month of a day)."""

    kind: str  # "month" | "day"
    label: str
    start: datetime
    end: datetime
    resolution: Resolution
    prev: str
    next: str
    up: str | None
    first_day: date | None = None

    def earlier(self, tz: str) -> MeterView:
        """The view to compare with: the month before, or the same weekday a week before."""
        assert self.first_day is not None
        if self.kind == "month":
            key = PeriodKey(self.first_day.year, self.first_day.month).previous()
            return month_view(key.year, key.month, tz)
        return day_view(self.first_day - timedelta(days=7), tz)


def month_view(year: int, month: int, tz: str) -> MeterView:
    """A local calendar month, one bar per day."""
    key = PeriodKey(year, month)
    first = date(year, month, 1)
    nxt, prv = key.next(), key.previous()
    return MeterView(
        kind="month",
        label=first.strftime("%B %Y"),
        start=_midnight(first, tz),
        end=_midnight(date(nxt.year, nxt.month, 1), tz),
        resolution=Resolution.D1,
        prev=f"month={prv}",
        next=f"month={nxt}",
        up=None,
        first_day=first,
    )


def day_view(day: date, tz: str, resolution: Resolution = Resolution.H1) -> MeterView:
    """A local calendar day (23 or 25 hours on DST days), one bar per hour (or quarter hour)."""
    res = "&res=15m" if resolution is Resolution.M15 else ""
    return MeterView(
        kind="day",
        label=day.strftime("%A %d %B %Y"),
        start=_midnight(day, tz),
        end=_midnight(day + timedelta(days=1), tz),
        resolution=resolution,
        prev=f"day={(day - timedelta(days=1)).isoformat()}{res}",
        next=f"day={(day + timedelta(days=1)).isoformat()}{res}",
        up=f"month={day.year:04d}-{day.month:02d}",
        first_day=day,
    )


def parse_view(
    month: str | None, day: str | None, now: datetime, tz: str, res: str | None = None
) -> MeterView:
    """The view asked for by ``?month=YYYY-MM`` or ``?day=YYYY-MM-DD`` (``res``: ``1d`` a
    month of days, ``1h`` a day of hours, ``15m`` a day of quarter hours); default: this month
    (or, for ``1h``/``15m`` without a day, today)."""
    if res in ("1h", "15m") and day is None:
        day = now.astimezone(zone(tz)).date().isoformat()
        month = None
    if res == "1d" and day is not None:
        month, day = day[:7], None
    if day is not None:
        if not _DAY_RE.match(day):
            raise ValidationFailed(f"day must look like YYYY-MM-DD, got {day!r}")
        try:
            d = date.fromisoformat(day)
        except ValueError as exc:
            raise ValidationFailed(f"invalid day {day!r}") from exc
        if d.year < 1971 or d.year > 9997:
            raise ValidationFailed(f"day out of range: {day!r}")
        return day_view(d, tz, Resolution.M15 if res == "15m" else Resolution.H1)
    if month is not None:
        m = _MONTH_RE.match(month)
        if not m:
            raise ValidationFailed(f"month must look like YYYY-MM, got {month!r}")
        key = PeriodKey(int(m[1]), int(m[2]))
        if key.year < 1971 or key.year > 9997:
            raise ValidationFailed(f"month out of range: {month!r}")
        return month_view(key.year, key.month, tz)
    local = now.astimezone(zone(tz))
    return month_view(local.year, local.month, tz)
