"""Hypothesis properties of the usage core."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.usage import MeterConfig, bucket_edges, derive_usage

T0 = 1_774_915_200.0  # 2026-03-31T00:00:00Z

steps = st.lists(st.integers(min_value=1, max_value=4 * 3600), min_size=2, max_size=60)
incs = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)
zones = st.sampled_from(["UTC", "Europe/Amsterdam", "America/St_Johns", "Pacific/Kiritimati"])


@st.composite
def monotone(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    dt = draw(steps)
    ts = T0 + np.cumsum(np.asarray([0, *dt], dtype=float))
    inc = np.asarray(draw(st.lists(incs, min_size=len(dt), max_size=len(dt))))
    start = draw(st.floats(min_value=0.0, max_value=1e6))
    return ts, start + np.r_[0.0, np.cumsum(inc)]


def _covering(ts: np.ndarray, res: str = "15m", tz: str = "UTC") -> np.ndarray:
    return bucket_edges(float(ts[0]), float(ts[-1]) + 1.0, res, tz)


@settings(max_examples=80, deadline=None)
@given(monotone())
def test_total_of_monotone_counter_is_last_minus_first(
    series: tuple[np.ndarray, np.ndarray],
) -> None:
    """However readings are spaced (gaps included), the total is last − first."""
    ts, v = series
    u = derive_usage("cumulative", ts, v, _covering(ts))
    assert np.isclose(u.total, v[-1] - v[0], rtol=1e-9, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(monotone(), zones, st.sampled_from(["1h", "1d", "1mo"]))
def test_bucketing_conserves_the_total(
    series: tuple[np.ndarray, np.ndarray], tz: str, res: str
) -> None:
    """Any resolution in any zone gives the same total as 15-minute buckets."""
    ts, v = series
    fine = derive_usage("cumulative", ts, v, _covering(ts), tz=tz)
    coarse = derive_usage("cumulative", ts, v, _covering(ts, res, tz), tz=tz)
    assert np.isclose(fine.total, coarse.total, rtol=1e-9, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(monotone(), st.randoms(use_true_random=False), st.integers(0, 5))
def test_arrival_order_and_resends_do_not_matter(
    series: tuple[np.ndarray, np.ndarray], rnd: object, dup: int
) -> None:
    """Shuffled readings with re-sent duplicates derive exactly as the sorted originals."""
    ts, v = series
    order = list(range(ts.shape[0])) + list(range(min(dup, ts.shape[0])))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    idx = np.asarray(order)
    edges = _covering(ts)
    a = derive_usage("cumulative", ts, v, edges)
    b = derive_usage("cumulative", ts[idx], v[idx], edges)
    assert np.array_equal(a.quantity, b.quantity)
    assert np.array_equal(a.estimated, b.estimated)
    assert np.array_equal(a.flags, b.flags)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=99_999.9), min_size=2, max_size=60),
    st.one_of(st.none(), st.just(100_000.0)),
    st.one_of(st.none(), st.floats(min_value=1.0, max_value=1e5)),
)
def test_usage_is_never_negative(values: list[float], register_max: float | None,
                                 max_rate: float | None) -> None:
    """Arbitrary ups and downs (resets, rollovers, glitches) never give negative usage."""
    ts = T0 + np.arange(len(values)) * 900.0
    cfg = MeterConfig(register_max=register_max, max_rate_per_hour=max_rate)
    u = derive_usage("cumulative", ts, np.asarray(values), _covering(ts), config=cfg)
    assert np.all(u.quantity >= -1e-9)
    assert np.all(u.quarantined >= 0)


@settings(max_examples=80, deadline=None)
@given(monotone(), st.data())
def test_a_single_glitch_never_changes_the_total(
    series: tuple[np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    """One transient low reading between two readings leaves the total unchanged."""
    ts, v = series
    i = data.draw(st.integers(min_value=1, max_value=ts.shape[0] - 1))
    frac = data.draw(st.floats(min_value=0.01, max_value=0.99))
    low = data.draw(st.floats(min_value=0.0, max_value=1.0)) * v[i - 1] * 0.999
    if not low < v[i - 1]:
        return
    gts = np.insert(ts, i, ts[i - 1] + frac * (ts[i] - ts[i - 1]))
    gv = np.insert(v, i, low)
    edges = _covering(ts)
    clean = derive_usage("cumulative", ts, v, edges)
    glitched = derive_usage("cumulative", gts, gv, edges)
    assert np.isclose(glitched.total, clean.total, rtol=1e-9, atol=1e-6)
