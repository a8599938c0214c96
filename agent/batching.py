"""Pure: turn buffered rows into the columnar series of a batch, deterministically.

The same rows always give the same series (series ordered by (meter, metric, unit, kind),
readings by (timestamp, row id)), so a batch rebuilt from the buffer after a restart is
identical to the one first published. Rows carry a small integer series id: three stable sorts
on one integer each (row id, then timestamp, then series id: cheaper than one sort on a tuple
key, and nearly free on rows already in order), columns transposed with ``zip``, each series'
run found by bisection. No numpy, so the agent process does not load it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from operator import itemgetter

from agent.protocol import Kind, Series

SeriesKey = tuple[str, str, str, str]  # meter, metric, unit, kind
Row = tuple[int, int, int, float]  # row id, series id, ts_ms, value

_ROW_ID, _SERIES_ID, _TS = itemgetter(0), itemgetter(1), itemgetter(2)


def series_from_rows(rows: Sequence[Row], keys: Mapping[int, SeriesKey]) -> tuple[Series, ...]:
    """The batch's series; ``keys`` maps every series id in ``rows`` to its key."""
    if not rows:
        return ()
    ordered = sorted(rows, key=_ROW_ID)
    ordered.sort(key=_TS)
    ordered.sort(key=_SERIES_ID)
    _, sids, ts, values = zip(*ordered, strict=True)
    runs: list[tuple[int, int, int]] = []  # series id, start, end
    start = 0
    for sid in sorted(set(sids)):
        end = bisect_right(sids, sid, start)
        runs.append((sid, start, end))
        start = end
    runs.sort(key=lambda run: keys[run[0]])
    out: list[Series] = []
    for sid, start, end in runs:
        meter, metric, unit, kind = keys[sid]
        out.append(Series(meter, metric, unit, Kind(kind), array("q", ts[start:end]),
                          array("d", values[start:end])))
    return tuple(out)
