"""The numpy grouping the agent used to seal batches: the reference its plain-Python one must match.

Kept for tests and ``bench/batch_sealing.py`` only; the agent process does not load numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from agent.batching import Row, SeriesKey
from agent.protocol import Kind, Series

NumpyGroup = tuple[SeriesKey, npt.NDArray[np.int64], npt.NDArray[np.float64]]


def numpy_groups(rows: Sequence[Row], keys: Mapping[int, SeriesKey]) -> list[NumpyGroup]:
    """Each series' key, timestamps and values, ordered by key, readings by (timestamp, row id)."""
    if not rows:
        return []
    n = len(rows)
    ids, sids, ts, values = zip(*rows, strict=True)
    sid_arr = np.fromiter(sids, dtype=np.int64, count=n)
    present = np.unique(sid_arr)
    ordered = sorted(present.tolist(), key=lambda s: keys[s])
    rank = np.zeros(int(present.max()) + 1, dtype=np.int64)
    rank[np.asarray(ordered, dtype=np.int64)] = np.arange(len(ordered), dtype=np.int64)
    code = rank[sid_arr]
    ts_arr = np.fromiter(ts, dtype=np.int64, count=n)
    order = np.lexsort((np.fromiter(ids, dtype=np.int64, count=n), ts_arr, code))
    ts_sorted = ts_arr[order]
    val_sorted = np.fromiter(values, dtype=np.float64, count=n)[order]
    bounds = np.cumsum(np.bincount(code, minlength=len(ordered))).tolist()
    out: list[NumpyGroup] = []
    start = 0
    for sid, end in zip(ordered, bounds, strict=True):
        out.append((keys[sid], ts_sorted[start:end], val_sorted[start:end]))
        start = end
    return out


def numpy_series_from_rows(
    rows: Sequence[Row], keys: Mapping[int, SeriesKey]
) -> tuple[Series, ...]:
    """The same groups as batch series."""
    return tuple(Series(m, q, u, Kind(k), ts, vals) for (m, q, u, k), ts, vals
                 in numpy_groups(rows, keys))
