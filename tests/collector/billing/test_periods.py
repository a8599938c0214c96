"""Billing periods in the customer's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from collector.billing.periods import PeriodKey, period_for
from collector.errors import ValidationFailed


def test_amsterdam_march_has_743_hours() -> None:
    """March in Europe/Amsterdam starts 23:00Z the day before and loses the DST hour."""
    p = period_for(PeriodKey(2026, 3), "Europe/Amsterdam")
    assert p.start == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert p.end == datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert p.end - p.start == timedelta(hours=743)


def test_amsterdam_october_has_745_hours() -> None:
    """October in Europe/Amsterdam gains the hour when summer time ends."""
    p = period_for(PeriodKey(2026, 10), "Europe/Amsterdam")
    assert p.start == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert p.end == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert p.end - p.start == timedelta(hours=745)


def test_kiritimati_month_starts_the_previous_utc_day() -> None:
    """UTC+14: the local March starts at 10:00Z on 28 February."""
    p = period_for(PeriodKey(2026, 3), "Pacific/Kiritimati")
    assert p.start == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert p.end == datetime(2026, 3, 31, 10, tzinfo=UTC)


def test_auckland_april_gains_an_hour() -> None:
    """NZ summer time ends on 5 April 2026: the local April is 721 hours long."""
    p = period_for(PeriodKey(2026, 4), "Pacific/Auckland")
    assert p.start == datetime(2026, 3, 31, 11, tzinfo=UTC)
    assert p.end == datetime(2026, 4, 30, 12, tzinfo=UTC)


def test_anniversary_anchor_is_clamped_to_short_months() -> None:
    """An anchor of 31 starts the February period on the 28th."""
    p = period_for(PeriodKey(2026, 2), "UTC", anchor_day=31)
    assert (p.first_day, p.end_day) == (date(2026, 2, 28), date(2026, 3, 31))


def test_consecutive_periods_tile_time() -> None:
    """The end of one period is the start of the next (half-open, no gap, no overlap)."""
    key = PeriodKey(2025, 1)
    for _ in range(24):
        assert (
            period_for(key, "Europe/Amsterdam").end
            == period_for(key.next(), "Europe/Amsterdam").start
        )
        key = key.next()


def test_period_key_parse_and_navigation() -> None:
    """Keys parse from YYYY-MM and roll over the year."""
    assert PeriodKey.parse("2026-12").next() == PeriodKey(2027, 1)
    assert PeriodKey.parse("2026-01").previous() == PeriodKey(2025, 12)
    assert str(PeriodKey(2026, 3)) == "2026-03"


@pytest.mark.parametrize("bad", ["2026-13", "2026-3", "march", ""])
def test_period_key_rejects_bad_text(bad: str) -> None:
    """Malformed period keys are a validation error."""
    with pytest.raises(ValidationFailed):
        PeriodKey.parse(bad)


def test_unknown_zone_is_rejected() -> None:
    """An unknown IANA zone is a validation error, not a crash."""
    with pytest.raises(ValidationFailed):
        period_for(PeriodKey(2026, 3), "Mars/Olympus")
