"""The pure analytics core: grids, timelines in a zone (DST), comparisons, profiles, TOU."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from collector.analytics import (
    Granularity,
    SeriesWindow,
    UsageGrid,
    compare_periods,
    comparison_windows,
    grid_from_rows,
    in_windows,
    load_profile,
    timeline,
    tou_breakdown,
)
from collector.errors import AnalyticsError
from collector.rating import parse_plan


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def flat_grid(start: int, end: int, per_bucket: float = 1.0, est: float = 0.0) -> UsageGrid:
    starts = np.arange(start, end, 900, dtype=np.int64)
    n = starts.shape[0]
    return UsageGrid(starts, np.full(n, per_bucket), np.full(n, est), np.ones(n, dtype=np.int64))


class TestGrid:
    def test_rows_outside_a_customers_window_do_not_count(self) -> None:
        """A meter moved to the customer on day 2 contributes only from then on."""
        t0 = ts(2026, 3, 1)
        bucket = np.arange(t0, t0 + 2 * 86400, 900, dtype=np.int64)
        series = np.full(bucket.shape[0], 7, dtype=np.int64)
        q = np.ones(bucket.shape[0])
        g = grid_from_rows(
            series, bucket, q, q * 0.5, np.ones_like(series),
            start=t0, end=t0 + 2 * 86400, windows=[SeriesWindow(7, t0 + 86400, None)],
        )
        assert g.total == 96.0
        assert g.total_estimated == 48.0
        assert g.quantity[:96].sum() == 0

    def test_windows_of_many_series_are_matched_vectorised(self) -> None:
        """Each row is kept iff its own series has a window containing its bucket."""
        rng = np.random.default_rng(1)
        series = rng.integers(1, 50, 5000)
        bucket = rng.integers(0, 10_000, 5000) * 900
        wins = [
            SeriesWindow(s, 900 * 100 * (s % 7), 900 * (3000 + 100 * s)) for s in range(1, 50, 2)
        ]
        wins += [SeriesWindow(2, None, 900 * 50), SeriesWindow(2, 900 * 60, None)]
        expected = np.zeros(5000, dtype=bool)
        for w in wins:
            m = series == w.series_id
            if w.start is not None:
                m &= bucket >= w.start
            if w.end is not None:
                m &= bucket < w.end
            expected |= m
        assert (in_windows(series, bucket, wins) == expected).all()

    def test_empty_range_is_refused(self) -> None:
        """A window whose end is not after its start is an AnalyticsError."""
        z = np.zeros(0, dtype=np.int64)
        with pytest.raises(AnalyticsError):
            grid_from_rows(z, z, z * 1.0, z * 1.0, z, start=10, end=10, windows=[])


class TestTimeline:
    def test_dst_days_have_23_and_25_hours_in_amsterdam(self) -> None:
        """Daily buckets in Europe/Amsterdam: 29 March 2026 is 23 h, 25 October 25 h."""
        g = flat_grid(ts(2026, 3, 28, 23), ts(2026, 3, 30, 22))
        tl = timeline(g, "1d", "Europe/Amsterdam")
        assert list(tl.quantity) == [92.0, 96.0]
        g = flat_grid(ts(2026, 10, 24, 22), ts(2026, 10, 26, 23))
        tl = timeline(g, "1d", "Europe/Amsterdam")
        assert list(tl.quantity) == [100.0, 96.0]

    def test_measured_plus_estimated_is_quantity(self) -> None:
        """Each bucket splits into measured and estimated parts."""
        g = flat_grid(ts(2026, 1, 1), ts(2026, 1, 3), per_bucket=2.0, est=0.5)
        tl = timeline(g, "1d", "UTC")
        assert list(tl.estimated) == [48.0, 48.0]
        assert list(tl.measured) == [144.0, 144.0]

    def test_weeks_start_on_local_mondays(self) -> None:
        """Weekly buckets run Monday 00:00 to Monday 00:00 local time."""
        g = flat_grid(ts(2026, 3, 1), ts(2026, 3, 16))  # Sunday 1 March .. Monday 16 March
        tl = timeline(g, Granularity.W1, "UTC")
        assert [datetime.fromtimestamp(int(s), UTC).date() for s in tl.starts] == [
            date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9)
        ]
        assert list(tl.quantity) == [96.0, 7 * 96.0, 7 * 96.0]

    def test_years_group_months(self) -> None:
        """A yearly timeline sums each local calendar year."""
        g = flat_grid(ts(2025, 12, 31), ts(2026, 1, 2))
        tl = timeline(g, "1y", "UTC")
        assert list(tl.quantity) == [96.0, 96.0]
        assert datetime.fromtimestamp(int(tl.ends[0]), UTC) == datetime(2026, 1, 1, tzinfo=UTC)

    def test_unknown_zone_is_refused(self) -> None:
        """An unknown zone is an AnalyticsError, not a crash."""
        with pytest.raises(AnalyticsError):
            timeline(flat_grid(0, 3600), "1h", "Mars/Olympus")


class TestComparison:
    def test_a_month_compares_with_the_month_before_and_last_year(self) -> None:
        """March 2026 → February 2026 and March 2025, local midnights."""
        tz = "Europe/Amsterdam"
        z = ZoneInfo(tz)
        w = comparison_windows(datetime(2026, 3, 1, tzinfo=z), datetime(2026, 4, 1, tzinfo=z), tz)
        assert w.previous == (datetime(2026, 2, 1, tzinfo=z), datetime(2026, 3, 1, tzinfo=z))
        assert w.year_ago == (datetime(2025, 3, 1, tzinfo=z), datetime(2025, 4, 1, tzinfo=z))

    def test_changes_are_relative_and_none_without_history(self) -> None:
        """+50 % vs previous; no year-ago usage gives None, not a division by zero."""
        cur = flat_grid(0, 900 * 4, 1.5)
        prev = flat_grid(0, 900 * 4, 1.0)
        none = flat_grid(0, 900 * 4, 0.0)
        c = compare_periods(cur, prev, none)
        assert c.change_vs_previous == pytest.approx(0.5)
        assert c.change_vs_year_ago is None


class TestProfile:
    def test_weekday_and_weekend_days_differ(self) -> None:
        """A meter busy on weekdays 09–17 shows it in the weekday profile only."""
        start = ts(2026, 3, 2)  # Monday
        starts = np.arange(start, start + 14 * 86400, 900, dtype=np.int64)
        hour = (starts % 86400) // 3600
        wd = ((starts // 86400) + 3) % 7
        q = np.where((hour >= 9) & (hour < 17) & (wd < 5), 2.0, 0.25)
        lp = load_profile(UsageGrid(starts, q, q * 0, np.ones_like(starts)), "UTC")
        assert lp.weekday[40] == 2.0
        assert lp.weekday[0] == 0.25
        assert lp.weekend[40] == 0.25
        assert lp.peak is not None
        assert lp.peak.demand == 8.0
        assert lp.load_factor == pytest.approx(float(q.mean() * 4) / 8.0)
        assert lp.duration[0] == 8.0
        assert lp.duration[-1] == 1.0
        assert lp.heat.shape == (24, 14)
        assert lp.heat[10, 0] == 8.0

    def test_holidays_count_as_weekend(self) -> None:
        """A Monday holiday moves into the weekend profile."""
        start = ts(2026, 4, 6)  # Easter Monday
        g = flat_grid(start, start + 86400, 3.0)
        lp = load_profile(g, "UTC", holidays=[date(2026, 4, 6)])
        assert np.isnan(lp.weekday).all()
        assert lp.weekend[0] == 3.0

    def test_peak_reports_when_it_happened(self) -> None:
        """The peak's bucket is the one with the most usage."""
        g = flat_grid(ts(2026, 1, 1), ts(2026, 1, 2))
        q = g.quantity.copy()
        q[37] = 5.0
        lp = load_profile(UsageGrid(g.starts, q, g.estimated, g.readings), "UTC")
        assert lp.peak is not None
        assert lp.peak.start == ts(2026, 1, 1, 9, 15)


TOU_PLAN = {
    "format": "tally.plan/v1",
    "id": "tou",
    "version": 1,
    "currency": "EUR",
    "time_zone": "UTC",
    "schedule": {
        "seasons": {
            "all": {
                "months": list(range(1, 13)),
                "weekday": {"0-8": "offpeak", "8-20": "peak", "20-24": "offpeak"},
                "weekend": {"0-24": "offpeak"},
            }
        }
    },
    "charges": [
        {"type": "time_of_use", "id": "energy", "unit": "kWh",
         "periods": {"peak": {"price": "0.30"}, "offpeak": {"price": "0.10"}}}
    ],
}


def test_tou_breakdown_assigns_each_bucket_to_its_period() -> None:
    """A flat weekday: 12 of 24 hours peak; a weekend day is all off-peak."""
    plan = parse_plan(TOU_PLAN)
    g = flat_grid(ts(2026, 3, 6), ts(2026, 3, 8))  # Friday + Saturday
    b = tou_breakdown(g, plan)
    assert b.as_dict() == {"offpeak": 48.0 + 96.0, "peak": 48.0}
