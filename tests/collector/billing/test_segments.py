"""Subscriptions cut to periods, and usage assigned to segments (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.billing.model import Subscription
from collector.billing.periods import PeriodKey, period_for
from collector.billing.segments import assign_usage, build_segments

MARCH_AMS = period_for(PeriodKey(2026, 3), "Europe/Amsterdam")


def _sub(sid: int, cust: int, series: int, start: datetime, end: datetime | None) -> Subscription:
    return Subscription(sid, cust, series, 1, start, end)


def test_plan_change_on_the_11th_prorates_by_local_days() -> None:
    """Change at local midnight of the 11th: 10/31 and 21/31 of the month, despite the DST day."""
    change = datetime(2026, 3, 10, 23, tzinfo=UTC)
    segs = build_segments(
        {1: MARCH_AMS},
        [_sub(1, 1, 7, datetime(2025, 1, 1, tzinfo=UTC), change), _sub(2, 1, 7, change, None)],
    )
    assert [s.fraction for s in segs] == [Fraction(10, 31), Fraction(21, 31)]
    assert segs[0].start == MARCH_AMS.start
    assert segs[1].end == MARCH_AMS.end


def test_subscription_outside_the_period_gives_no_segment() -> None:
    """A meter removed before the month starts is not billed."""
    segs = build_segments(
        {1: MARCH_AMS},
        [_sub(1, 1, 7, datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))],
    )
    assert segs == []


def test_interval_goes_to_the_segment_containing_its_start() -> None:
    """An interval starting exactly at the change instant belongs to the new segment."""
    change = datetime(2026, 3, 10, 23, tzinfo=UTC)
    segs = build_segments(
        {1: MARCH_AMS},
        [_sub(1, 1, 7, datetime(2025, 1, 1, tzinfo=UTC), change), _sub(2, 1, 7, change, None)],
    )
    t = int(change.timestamp())
    buckets = np.array([t - 900, t, t + 900], dtype=np.int64)
    got = assign_usage(
        segs,
        np.full(3, 7, dtype=np.int64),
        buckets,
        quantity=np.ones(3),
        estimated=np.zeros(3),
        readings=np.ones(3, dtype=np.int64),
    )
    assert got.segment.tolist() == [0, 1, 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60 * 96)), min_size=0, max_size=300),
    st.lists(st.integers(1, 30 * 96), min_size=0, max_size=3, unique=True),
)
def test_assignment_matches_a_plain_loop(rows: list[tuple[int, int]], cuts: list[int]) -> None:
    """The vectorised assignment equals checking every row against every segment."""
    base = datetime(2026, 2, 15, tzinfo=UTC)
    period = MARCH_AMS
    subs: list[Subscription] = []
    for series in range(3):
        bounds = [base, *(period.start + timedelta(minutes=15 * c) for c in sorted(cuts)), None]
        for k in range(len(bounds) - 1):
            subs.append(_sub(len(subs) + 1, 1, series, bounds[k], bounds[k + 1]))  # type: ignore[arg-type]
    segs = build_segments({1: period}, subs)
    start = int(base.timestamp())
    series_arr = np.array([r[0] for r in rows], dtype=np.int64)
    buckets = np.array([start + 900 * r[1] for r in rows], dtype=np.int64)
    got = assign_usage(
        segs,
        series_arr,
        buckets,
        quantity=np.ones(len(rows)),
        estimated=np.zeros(len(rows)),
        readings=np.ones(len(rows), dtype=np.int64),
    )
    expected = []
    for s_id, b in zip(series_arr.tolist(), buckets.tolist(), strict=True):
        for seg in segs:
            if seg.series_id == s_id and seg.start.timestamp() <= b < seg.end.timestamp():
                expected.append(seg.index)
    assert sorted(got.segment.tolist()) == sorted(expected)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60 * 96)), min_size=0, max_size=300),
    st.lists(st.integers(1, 30 * 96), min_size=0, max_size=3, unique=True),
)
def test_sorted_rows_take_the_run_path_with_the_same_result(
    rows: list[tuple[int, int]], cuts: list[int]
) -> None:
    """Rows sorted by (series, bucket), as the usage store returns them, are assigned by runs:
    the same segments as the row-by-row search, in row order, with their own columns."""
    rows = sorted(rows)
    base = datetime(2026, 2, 15, tzinfo=UTC)
    subs: list[Subscription] = []
    for series in range(3):
        bounds = [base, *(MARCH_AMS.start + timedelta(minutes=15 * c) for c in sorted(cuts)), None]
        for k in range(len(bounds) - 1):
            subs.append(_sub(len(subs) + 1, 1, series, bounds[k], bounds[k + 1]))  # type: ignore[arg-type]
    segs = build_segments({1: MARCH_AMS}, subs)
    start = int(base.timestamp())
    series_arr = np.array([r[0] for r in rows], dtype=np.int64)
    buckets = np.array([start + 900 * r[1] for r in rows], dtype=np.int64)
    got = assign_usage(
        segs,
        series_arr,
        buckets,
        quantity=np.arange(len(rows), dtype=np.float64),  # the row number, to follow the rows
        estimated=np.zeros(len(rows)),
        readings=np.ones(len(rows), dtype=np.int64),
    )
    expected: list[tuple[int, int]] = []
    for k, (s_id, b) in enumerate(zip(series_arr.tolist(), buckets.tolist(), strict=True)):
        owner = [
            seg.index
            for seg in segs
            if seg.series_id == s_id and seg.start.timestamp() <= b < seg.end.timestamp()
        ]
        expected += [(owner[-1], k)] if owner else []
    assert list(zip(got.segment.tolist(), got.quantity.astype(int).tolist(), strict=True)) == (
        expected
    )
    assert got.starts.tolist() == [int(buckets[k]) for _, k in expected]


def test_usage_covering_every_segment_is_assigned_without_copies() -> None:
    """A month of intervals for two meters, one segment each: every row is kept, in order."""
    segs = build_segments(
        {1: MARCH_AMS, 2: MARCH_AMS},
        [
            _sub(1, 1, 7, datetime(2025, 1, 1, tzinfo=UTC), None),
            _sub(2, 2, 9, MARCH_AMS.start, None),
        ],
    )
    t = np.arange(int(MARCH_AMS.start.timestamp()), int(MARCH_AMS.end.timestamp()), 900)
    series = np.repeat(np.array([7, 9], dtype=np.int64), t.size)
    quantity = np.arange(2 * t.size, dtype=np.float64)
    got = assign_usage(
        segs,
        series,
        np.tile(t, 2),
        quantity=quantity,
        estimated=np.zeros(2 * t.size),
        readings=np.ones(2 * t.size, dtype=np.int64),
    )
    assert got.segment.tolist() == [0] * t.size + [1] * t.size
    assert got.quantity is quantity
