"""Delta and gauge series, pro-rata splitting, reading counts and peaks."""

from __future__ import annotations

import numpy as np
import pytest

from collector.usage import MeterConfig, SeriesBatch, bucket_edges, derive_many, derive_usage

T0 = 1_774_915_200.0  # 2026-03-31T00:00:00Z


def test_delta_readings_are_summed_into_their_intervals() -> None:
    """Deltas 1, 2, 3 reported at 15, 30, 45 min fill the three buckets before them."""
    ts = T0 + np.asarray([900.0, 1800.0, 2700.0])
    u = derive_usage("delta", ts, np.asarray([1.0, 2.0, 3.0]), bucket_edges(T0, T0 + 2700, "15m"))
    assert u.quantity.tolist() == pytest.approx([1.0, 2.0, 3.0])


def test_interval_crossing_a_boundary_is_split_pro_rata() -> None:
    """Readings at 00:10 and 00:25 (3 kWh apart): 1 kWh before 00:15, 2 kWh after."""
    ts = T0 + np.asarray([600.0, 1500.0])
    u = derive_usage("cumulative", ts, np.asarray([0.0, 3.0]), bucket_edges(T0, T0 + 1800, "15m"))
    assert u.quantity.tolist() == pytest.approx([1.0, 2.0])
    assert u.coverage.tolist() == pytest.approx([5 / 15, 10 / 15])


def test_gauge_integral_is_trapezoid_in_unit_hours() -> None:
    """2 kW then 4 kW 15 min apart: (2 + 4) / 2 × 0.25 h = 0.75 kWh; peak 4."""
    ts = T0 + np.asarray([0.0, 900.0])
    u = derive_usage("gauge", ts, np.asarray([2.0, 4.0]), np.asarray([T0, T0 + 900, T0 + 1800]))
    assert u.quantity[0] == pytest.approx(0.75)
    assert u.peak[0] == 2.0
    assert u.peak[1] == 4.0


def test_reading_count_per_bucket() -> None:
    """Three readings in the first bucket, one in the second."""
    ts = T0 + np.asarray([0.0, 300.0, 600.0, 900.0])
    u = derive_usage("cumulative", ts, np.arange(4.0), np.asarray([T0, T0 + 900, T0 + 1800]))
    assert u.reading_count.tolist() == [3, 1]


def test_buckets_without_readings_have_no_coverage() -> None:
    """Before the first reading nothing is known: quantity 0 and coverage 0."""
    ts = T0 + np.asarray([1800.0, 2700.0])
    u = derive_usage("cumulative", ts, np.asarray([0.0, 1.0]), bucket_edges(T0, T0 + 2700, "15m"))
    assert u.coverage[0] == 0.0
    assert u.quantity[0] == 0.0


def test_many_series_at_once_match_one_by_one() -> None:
    """The vectorised batch gives each series the same buckets as deriving it alone."""
    rng = np.random.default_rng(7)
    kinds = ["cumulative", "delta", "gauge", "cumulative"]
    series = []
    for _ in kinds:
        grid = np.arange(0, 86400, 300)
        ts = T0 + np.sort(rng.choice(grid, size=150, replace=False)).astype(float)
        series.append((ts, np.cumsum(rng.random(150))))
    edges = bucket_edges(T0, T0 + 86400, "15m")
    offsets = np.cumsum([0] + [s[0].shape[0] for s in series])
    batch = SeriesBatch(
        offsets.astype(np.int64), np.concatenate([s[0] for s in series]),
        np.concatenate([s[1] for s in series]), kinds, [MeterConfig()] * 4)  # type: ignore[arg-type]
    many = derive_many(batch, edges)
    for i, (kind, (ts, v)) in enumerate(zip(kinds, series, strict=True)):
        one = derive_usage(kind, ts, v, edges)
        assert np.allclose(many.quantity[i], one.quantity)
        assert np.array_equal(many.flags[i], one.flags)
