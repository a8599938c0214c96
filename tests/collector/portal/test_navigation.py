"""Calendar windows of the portal in the customer's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from collector.errors import ValidationFailed
from collector.portal.navigation import current_period, day_view, month_view, parse_view
from collector.usage import Resolution


def test_current_period_uses_the_local_date() -> None:
    """31 March 23:30 UTC is already April in Amsterdam."""
    p = current_period(datetime(2026, 3, 31, 23, 30, tzinfo=UTC), "Europe/Amsterdam")
    assert str(p.key) == "2026-04"
    assert p.start == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)


def test_current_period_with_an_anchor_day() -> None:
    """With periods starting on the 15th, 10 April belongs to the period that began 15 March."""
    p = current_period(datetime(2026, 4, 10, tzinfo=UTC), "UTC", anchor_day=15)
    assert p.first_day == date(2026, 3, 15)
    assert p.end_day == date(2026, 4, 15)


def test_month_view_wraps_the_year() -> None:
    """December's neighbours are November and next January."""
    v = month_view(2026, 12, "UTC")
    assert (v.prev, v.next, v.resolution) == ("month=2026-11", "month=2027-01", Resolution.D1)


def test_day_view_on_a_dst_day_has_23_hours() -> None:
    """29 March 2026 in Amsterdam is 23 hours long and links back to its month."""
    v = day_view(date(2026, 3, 29), "Europe/Amsterdam")
    assert (v.end - v.start).total_seconds() == 23 * 3600
    assert v.up == "month=2026-03"


@pytest.mark.parametrize(
    ("month", "day"), [("2026-13", None), ("26-01", None), (None, "2026-02-30"), (None, "x")]
)
def test_bad_views_are_refused(month: str | None, day: str | None) -> None:
    """Malformed or impossible months and days are ValidationFailed."""
    with pytest.raises(ValidationFailed):
        parse_view(month, day, datetime(2026, 4, 1, tzinfo=UTC), "UTC")
