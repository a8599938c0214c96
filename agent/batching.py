"""Pure: turn buffered rows into the columnar series of a batch, deterministically.

The same rows always give the same series (order: series key, then timestamp, then row id), so
a batch rebuilt from the buffer after a restart is identical to the one first published.
Columns are transposed with ``zip`` and grouped with numpy: no Python-level loop per reading.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agent.protocol import Kind, Series

Row = tuple[int, str, str, str, str, int, float]  # id, meter, metric, unit, kind, ts_ms, value


def series_from_rows(rows: Sequence[Row]) -> tuple[Series, ...]:
    """Series of ``rows`` sorted by (meter, metric, unit, kind); readings by (ts_ms, id)."""
    if not rows:
        return ()
    ids, meters, metrics, units, kinds, ts, values = zip(*rows, strict=True)
    keys = list(zip(meters, metrics, units, kinds, strict=True))
    uniq = sorted(set(keys))
    index = {k: i for i, k in enumerate(uniq)}
    n = len(rows)
    code = np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=n)
    ts_arr = np.fromiter(ts, dtype=np.int64, count=n)
    val_arr = np.fromiter(values, dtype=np.float64, count=n)
    id_arr = np.fromiter(ids, dtype=np.int64, count=n)
    order = np.lexsort((id_arr, ts_arr, code))
    ts_sorted = ts_arr[order]
    val_sorted = val_arr[order]
    bounds = np.cumsum(np.bincount(code, minlength=len(uniq)))
    out: list[Series] = []
    start = 0
    for (meter, metric, unit, kind), end in zip(uniq, bounds.tolist(), strict=True):
        out.append(Series(meter, metric, unit, Kind(kind), ts_sorted[start:end],
                          val_sorted[start:end]))
        start = end
    return tuple(out)
