"""The refresh's load groups: bounded by readings, never empty, never splitting a window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import UsageError
from collector.usage import LoadPlanner


def test_first_group_is_a_fixed_number_of_windows() -> None:
    planner = LoadPlanner(max_readings=1000, first=4)
    assert planner.take([900.0] * 10) == 4
    assert planner.take([]) == 0


def test_later_groups_follow_the_densest_window_seen() -> None:
    """After 4 windows of 900 s with 300 readings each (1/3 per second), 1000 readings fit
    three more 900-s windows (900 predicted each would be 2 700 > 1000: only one fits)."""
    planner = LoadPlanner(max_readings=1000, first=4)
    planner.take([900.0] * 10)
    planner.observe([900.0] * 4, [300] * 4)
    assert planner.take([900.0] * 6) == 3
    planner.observe([900.0] * 3, [900, 900, 900])  # denser: one reading per second
    assert planner.take([900.0] * 3) == 1
    assert planner.take([100.0] * 3) == 3  # 100 each: all three fit


def test_growth_is_bounded_when_windows_are_sparse() -> None:
    planner = LoadPlanner(max_readings=1_000_000, first=2, growth=8)
    assert planner.take([60.0] * 1000) == 2
    planner.observe([60.0, 60.0], [1, 1])
    assert planner.take([60.0] * 998) == 16
    planner.observe([60.0] * 16, [1] * 16)
    assert planner.take([60.0] * 982) == 128


def test_one_window_larger_than_the_bound_is_still_taken() -> None:
    planner = LoadPlanner(max_readings=10, first=1)
    planner.take([1.0])
    planner.observe([1.0], [50])
    assert planner.take([3600.0, 3600.0]) == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(UsageError):
        LoadPlanner(max_readings=0)


@given(
    st.lists(st.tuples(st.floats(0.0, 1e5), st.integers(0, 10_000)), min_size=1, max_size=300),
    st.integers(1, 50_000),
)
def test_groups_cover_every_window_once_and_respect_the_bound(
    windows: list[tuple[float, int]], cap: int
) -> None:
    """Groups partition the windows in order; once a density is known, a group of more than
    one window never holds more readings than the bound at the densest rate seen before it."""
    planner = LoadPlanner(max_readings=cap, first=3)
    start = 0
    while start < len(windows):
        spans = [s for s, _ in windows[start:]]
        n = planner.take(spans)
        assert 1 <= n <= len(windows) - start
        if planner.density > 0 and n > 1:
            assert sum(max(s, 1.0) for s in spans[:n]) * planner.density <= cap * (1 + 1e-9)
        planner.observe(spans[:n], [c for _, c in windows[start : start + n]])
        start += n
    assert start == len(windows)
