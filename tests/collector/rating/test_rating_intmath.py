"""Sums and maxima per key over runs of equal keys equal the plain per-row scatter."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.rating.intmath import exact_sums, run_sums
from collector.rating.meter_usage import max_per

_ROWS = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10**6)), max_size=200)


@settings(max_examples=80, deadline=None)
@given(_ROWS, st.booleans())
def test_run_sums_equal_the_weighted_bincount(rows: list[tuple[int, int]], grouped: bool) -> None:
    """Integer weights: exactly the same sums, grouped by key (runs) or mixed; float weights:
    the same sums up to rounding (numpy adds a run in its own order)."""
    if grouped:
        rows = sorted(rows)
    keys = np.array([k for k, _ in rows], dtype=np.int64)
    ints = np.array([v for _, v in rows], dtype=np.int64)
    floats = ints / 1000.0
    assert run_sums(keys, ints, 6).tolist() == np.bincount(keys, ints, 6).tolist()
    assert np.allclose(run_sums(keys, floats, 6), np.bincount(keys, floats, 6), rtol=1e-12)
    assert exact_sums(keys, ints, 6).tolist() == [
        sum(v for k, v in rows if k == b) for b in range(6)
    ]


@settings(max_examples=80, deadline=None)
@given(_ROWS, st.booleans())
def test_max_per_equals_the_maximum_per_key(rows: list[tuple[int, int]], grouped: bool) -> None:
    """Runs or not, the maximum per key (0 where a key has no row)."""
    if grouped:
        rows = sorted(rows, key=lambda r: r[0])
    keys = np.array([k for k, _ in rows], dtype=np.int32)
    values = np.array([v for _, v in rows], dtype=np.int64)
    assert max_per(keys, values, 6).tolist() == [
        max((v for k, v in rows if k == b), default=0) for b in range(6)
    ]
