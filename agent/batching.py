"""Pure: turn buffered rows into the columnar series of a batch, deterministically.

The same rows always give the same series (series ordered by (meter, metric, unit, kind),
readings by (timestamp, row id)), so a batch rebuilt from the buffer after a restart is
identical to the one first published. Rows carry a small integer series id; columns are
transposed with ``zip`` and grouped with numpy: no Python-level loop per reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from agent.protocol import Kind, Series

SeriesKey = tuple[str, str, str, str]  # meter, metric, unit, kind
Row = tuple[int, int, int, float]  # row id, series id, ts_ms, value


def series_from_rows(rows: Sequence[Row], keys: Mapping[int, SeriesKey]) -> tuple[Series, ...]:
    """The batch's series; ``keys`` maps every series id in ``rows`` to its key."""
    if not rows:
        return ()
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
    out: list[Series] = []
    start = 0
    for sid, end in zip(ordered, bounds, strict=True):
        meter, metric, unit, kind = keys[sid]
        out.append(Series(meter, metric, unit, Kind(kind), ts_sorted[start:end],
                          val_sorted[start:end]))
        start = end
    return tuple(out)

