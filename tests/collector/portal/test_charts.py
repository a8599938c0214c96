"""Inline SVG bar charts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from collector.portal.charts import Bar, bar_chart, nice_max


def test_estimated_part_is_a_separate_hatched_rect() -> None:
    """A bar with an estimated part draws a measured rect and a hatched estimated rect."""
    svg = bar_chart([Bar("1", "t", 10.0, 4.0)], unit="kWh", chart_id="c", caption="cap")
    assert svg.count('class="act"') == 1
    assert svg.count('class="est" fill="url(#est-c)"') == 1
    assert '<pattern id="est-c"' in svg


def test_text_is_escaped() -> None:
    """Labels, titles, unit, caption and links cannot inject markup."""
    bad = '<script>"'
    svg = bar_chart(
        [Bar(bad, bad, 1.0, 0.0, href=f"?day={bad}")], unit=bad, chart_id=bad, caption=bad
    )
    assert "<script" not in svg
    assert '"<' not in svg


@given(st.floats(min_value=1e-6, max_value=1e12))
def test_nice_max_is_a_small_round_bound(value: float) -> None:
    """The axis top is at least the value and less than 2.5 times it."""
    top = nice_max(value)
    assert value <= top * (1 + 1e-9)
    assert top < value * 2.5
