"""The vectorised counter fast path derives exactly what the general pipeline derives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.usage import (
    MeterConfig,
    Replacement,
    SeriesBatch,
    SeriesKind,
    bucket_edges,
    derive_many,
)
from collector.usage.derive import DerivedMatrix, _derive_general

T0 = 1_774_915_200.0  # 2026-03-31T00:00:00Z

configs = st.sampled_from(
    [
        MeterConfig(),
        MeterConfig(jitter_tolerance=0.05, glitch_window=1),
        MeterConfig(register_max=1000.0, max_rate_per_hour=400.0),
        MeterConfig(max_rate_per_hour=40.0, glitch_window=0),
        MeterConfig(profile_weeks=0, short_gap_s=1800.0),
        MeterConfig(glitch_window=5, gap_factor=1.5),
        MeterConfig(max_gap_s=5000.0),
    ]
)


@st.composite
def series(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Counter readings with off-grid times, duplicates, gaps (short, long), drops and spikes."""
    n = draw(st.integers(min_value=0, max_value=40))
    steps = draw(
        st.lists(
            st.sampled_from([900.0, 900.0, 900.0, 450.0, 1234.5, 2700.0, 7200.0, 0.0]),
            min_size=n,
            max_size=n,
        )
    )
    start = T0 + draw(st.sampled_from([0.0, 300.0, -5400.0, 86400.0 * 2, -2.9 * 86400.0]))
    ts = start + np.cumsum(np.asarray([0.0, *steps]))
    inc = np.asarray(draw(st.lists(st.floats(0.0, 30.0), min_size=n + 1, max_size=n + 1)))
    v = 900.0 + np.cumsum(inc)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, n))
        v[i] = draw(st.sampled_from([0.0, v[i] * 0.5, v[i] + 5000.0, v[i] - 0.01]))
    order = np.asarray(draw(st.permutations(list(range(n + 1)))))
    return ts[order], v[order]


def _reference(batch: SeriesBatch, edges: np.ndarray, tz: str) -> DerivedMatrix:
    return _derive_general(batch, edges, tz, 1 << 30)


def _assert_same(a: DerivedMatrix, b: DerivedMatrix) -> None:
    for name in ("quantity", "estimated", "quarantined", "coverage"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-9)
    assert np.array_equal(a.reading_count, b.reading_count)
    assert np.array_equal(a.flags, b.flags)
    np.testing.assert_array_equal(a.peak, b.peak)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(series(), configs), min_size=1, max_size=5),
    st.sampled_from([("15m", "UTC"), ("1h", "America/St_Johns"), ("1d", "Europe/Amsterdam")]),
    st.integers(min_value=1, max_value=60),
)
def test_fast_path_matches_the_general_pipeline(
    data: list[tuple[tuple[np.ndarray, np.ndarray], MeterConfig]],
    grid: tuple[str, str],
    chunk: int,
) -> None:
    """Counters with glitches, resets, rollovers, jitter, quarantines and gaps: same buckets."""
    res, tz = grid
    ts = np.concatenate([s[0] for s, _ in data]).astype(np.float64)
    values = np.concatenate([s[1] for s, _ in data])
    counts = [s[0].shape[0] for s, _ in data]
    batch = SeriesBatch(
        np.r_[0, np.cumsum(counts)].astype(np.int64),
        ts,
        values,
        [SeriesKind.CUMULATIVE] * len(data),
        [c for _, c in data],
    )
    edges = bucket_edges(T0 - 4 * 86400.0, T0 + 3 * 86400.0, res, tz)  # 1d: a 23-hour day
    _assert_same(derive_many(batch, edges, tz, chunk_readings=chunk), _reference(batch, edges, tz))


def test_fast_path_matches_on_a_long_gap_with_history() -> None:
    """A six-hour outage after three weeks of history: the same profile estimate."""
    rng = np.random.default_rng(3)
    ts = np.asarray(T0 - 21 * 86400.0 + np.arange(22 * 96) * 900.0, dtype=np.float64)
    keep = np.ones(ts.shape[0], dtype=bool)
    keep[21 * 96 + 20 : 21 * 96 + 44] = False
    values = 10.0 + np.cumsum(rng.random(ts.shape[0]))
    batch = SeriesBatch(
        np.asarray([0, int(keep.sum())], dtype=np.int64),
        ts[keep],
        values[keep],
        [SeriesKind.CUMULATIVE],
        [MeterConfig()],
    )
    edges = bucket_edges(T0, T0 + 86400.0, "15m", "Europe/Amsterdam")
    fast = derive_many(batch, edges, "Europe/Amsterdam")
    _assert_same(fast, _reference(batch, edges, "Europe/Amsterdam"))
    assert fast.estimated.sum() > 0


def test_mixed_batches_match_the_general_pipeline() -> None:
    """Gauges, delta series and a replaced meter among counters: each row as the general code."""
    K = SeriesKind
    ts = T0 + np.arange(20) * 900.0
    ramp = 100.0 + np.arange(20) * 0.5
    batch = SeriesBatch(
        np.arange(0, 101, 20, dtype=np.int64),
        np.tile(ts, 5),
        np.concatenate([ramp, np.full(20, 0.25), ramp, np.r_[ramp[:10], ramp[10:] - 99.0], ramp]),
        [K.CUMULATIVE, K.DELTA, K.GAUGE, K.CUMULATIVE, K.CUMULATIVE],
        [MeterConfig()] * 5,
        {3: (Replacement(at=float(ts[10]), old_final=105.2, new_initial=0.9),)},
    )
    edges = bucket_edges(T0, T0 + 86400.0, "15m")
    _assert_same(derive_many(batch, edges, chunk_readings=30), _reference(batch, edges, "UTC"))


@pytest.mark.parametrize("offsets", [[0, 0, 0, 0, 0], [0, 0, 1, 1, 4], [0, 4, 4, 4, 4]])
@pytest.mark.parametrize("chunk", [1, 2, 100])
def test_empty_and_single_reading_series_match(offsets: list[int], chunk: int) -> None:
    """Series without readings or with one reading, in any grouping: as the general code."""
    ts = np.asarray([T0 + 10.0, T0 + 100.0, T0 + 1000.0, T0 + 5000.0])
    n = offsets[-1]
    batch = SeriesBatch(
        np.asarray(offsets, dtype=np.int64),
        ts[:n],
        np.asarray([5.0, 6.0, 7.0, 8.0])[:n],
        [SeriesKind.CUMULATIVE] * 4,
        [MeterConfig()] * 4,
    )
    edges = bucket_edges(T0, T0 + 86400.0, "15m")
    _assert_same(derive_many(batch, edges, chunk_readings=chunk), _reference(batch, edges, "UTC"))
