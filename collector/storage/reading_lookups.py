"""The incremental refresh's lookups on ``readings``, bounded by constant time ranges.

The refresh asks, for every dirty series, for the readings around its dirty range (the
neighbours that fix the derivation window) and then for the readings of that window. Written as
one join whose time conditions depend on each series' row (``r.ts < d.ts_from``), every lookup
keeps every chunk of a TimescaleDB hypertable in the plan: planning grows with the number of
chunks and each of the hundreds of per-series executions checks them all again (runtime chunk
exclusion), which made the refresh 3-8x slower than on plain PostgreSQL.

Here the series are grouped by where their ranges lie (:func:`time_groups`, pure) and each
group's statement also carries the group's time bounds as constants, so TimescaleDB plans and
scans only the chunks of those hours (plain PostgreSQL prunes its monthly partitions the same
way). The neighbour lookups search within a margin of a few expected reading intervals; a series
whose neighbours lie further away (a new series, a long gap) is looked up again without the
margin (:data:`_UNBOUNDED_SQL`), so the answer is always the same as the unbounded lookup.

The statements are never prepared: a generic plan cannot exclude chunks or partitions when it
is planned, and its guesses for the bounds' selectivity chose much slower plans (measured).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg

__all__ = ["DAY_S", "MONTH_S", "WindowBounds", "load_ranges", "time_groups", "window_bounds"]

Conn = psycopg.Connection[Any]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# (series_id, lo, hi, load_from, load_to): buckets [lo, hi) are derived from the readings in
# [load_from, load_to] (Unix seconds; load_from/load_to may be -inf/+inf)
WindowBounds = tuple[int, float, float, float, float]

_DAY_S: Final = 86400.0
DAY_S: Final = _DAY_S  # TimescaleDB: a day per group (chunks: 30 days, 1 before 0005)
MONTH_S: Final = 31 * _DAY_S  # plain PostgreSQL: monthly partitions
_MAX_GROUPS: Final = 8  # statements per lookup at most: beyond, groups get wider
_BIN_S: Final = 900.0
_INF_KEY: Final = np.iinfo(np.int64).max

_PG_EPOCH_S: Final = 946_684_800

# (k+1)-th neighbour before ts_from and after ts_to, then the (k+1)-th before lo and at or after
# hi, each lookup limited to the group's constant bounds: lower side [%(l)s, %(f)s], upper side
# [%(t)s, %(u)s]. ``lf``/``hf`` say whether the (k+1)-th neighbours were found within the bounds.
# Where a neighbour was not found, the
# answer falls back as the unbounded one does (first/last reading, else the range's own end),
# which is exact when the series has no reading outside the bound on that side.
_BOUNDED_SQL: Final = (
    "WITH d AS (SELECT * FROM unnest(%(sid)s::bigint[], %(a)s::timestamptz[],"
    "   %(b)s::timestamptz[], %(k)s::int[]) AS d(sid, ts_from, ts_to, k)),"
    " n AS (SELECT d.*,"
    "   (SELECT r.ts FROM readings r WHERE r.series_id = d.sid AND r.ts < d.ts_from"
    "     AND r.ts >= %(l)s AND r.ts <= %(f)s ORDER BY r.ts DESC OFFSET d.k LIMIT 1) AS lr,"
    "   (SELECT r.ts FROM readings r WHERE r.series_id = d.sid AND r.ts > d.ts_to"
    "     AND r.ts >= %(t)s AND r.ts <= %(u)s ORDER BY r.ts OFFSET d.k LIMIT 1) AS hr"
    "   FROM d),"
    " w AS (SELECT n.sid, n.k, n.lr IS NOT NULL AS lf, n.hr IS NOT NULL AS hf,"
    "   date_bin('15 minutes', coalesce(n.lr, (SELECT min(r.ts) FROM readings r"
    "     WHERE r.series_id = n.sid AND r.ts <= n.ts_from AND r.ts >= %(l)s AND r.ts <= %(f)s),"
    "     n.ts_from), timestamptz 'epoch') AS lo,"
    "   date_bin('15 minutes', coalesce(n.hr, (SELECT max(r.ts) FROM readings r"
    "     WHERE r.series_id = n.sid AND r.ts >= n.ts_to AND r.ts >= %(t)s AND r.ts <= %(u)s),"
    "     n.ts_to), timestamptz 'epoch') + interval '15 minutes' AS hi"
    "   FROM n)"
    " SELECT w.sid, extract(epoch FROM w.lo)::float8, extract(epoch FROM w.hi)::float8,"
    "  extract(epoch FROM (SELECT r.ts FROM readings r WHERE r.series_id = w.sid"
    "    AND r.ts < w.lo AND r.ts >= %(l)s AND r.ts <= %(f)s"
    "    ORDER BY r.ts DESC OFFSET w.k LIMIT 1))::float8,"
    "  extract(epoch FROM (SELECT r.ts FROM readings r WHERE r.series_id = w.sid"
    "    AND r.ts >= w.hi AND r.ts >= %(t)s AND r.ts <= %(u)s"
    "    ORDER BY r.ts OFFSET w.k LIMIT 1))::float8,"
    "  w.lf, w.hf"
    " FROM w"
)

# Which of the series left unsettled on one side have readings beyond the bound there; asked
# only for those series, as these plan every chunk beyond the bound.
_BELOW_SQL: Final = (
    "SELECT s.sid FROM unnest(%(sid)s::bigint[]) AS s(sid) WHERE EXISTS"
    " (SELECT 1 FROM readings r WHERE r.series_id = s.sid AND r.ts < %(at)s)"
)
_BEYOND_SQL: Final = (
    "SELECT s.sid FROM unnest(%(sid)s::bigint[]) AS s(sid) WHERE EXISTS"
    " (SELECT 1 FROM readings r WHERE r.series_id = s.sid AND r.ts > %(at)s)"
)

# The same answers without margins, for the series the bounded lookup could not settle.
_UNBOUNDED_SQL: Final = (
    "WITH d AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[],"
    "   %s::int[]) AS d(sid, ts_from, ts_to, k)),"
    " w AS (SELECT d.sid, d.k,"
    "   date_bin('15 minutes', coalesce((SELECT r.ts FROM readings r WHERE"
    "     r.series_id = d.sid AND r.ts < d.ts_from ORDER BY r.ts DESC OFFSET d.k LIMIT 1),"
    "     (SELECT min(r.ts) FROM readings r WHERE r.series_id = d.sid"
    "       AND r.ts <= d.ts_from), d.ts_from),"
    "     timestamptz 'epoch') AS lo,"
    "   date_bin('15 minutes', coalesce((SELECT r.ts FROM readings r WHERE"
    "     r.series_id = d.sid AND r.ts > d.ts_to ORDER BY r.ts OFFSET d.k LIMIT 1),"
    "     (SELECT max(r.ts) FROM readings r WHERE r.series_id = d.sid"
    "       AND r.ts >= d.ts_to), d.ts_to),"
    "     timestamptz 'epoch') + interval '15 minutes' AS hi"
    "   FROM d)"
    " SELECT w.sid, extract(epoch FROM w.lo)::float8, extract(epoch FROM w.hi)::float8,"
    "  coalesce(extract(epoch FROM (SELECT r.ts FROM readings r WHERE r.series_id = w.sid"
    "    AND r.ts < w.lo ORDER BY r.ts DESC OFFSET w.k LIMIT 1))::float8, '-infinity'),"
    "  coalesce(extract(epoch FROM (SELECT r.ts FROM readings r WHERE r.series_id = w.sid"
    "    AND r.ts >= w.hi ORDER BY r.ts OFFSET w.k LIMIT 1))::float8, 'infinity')"
    " FROM w"
)

# One row per window: its readings packed by the server into one byte string of
# (timestamptz, float8) pairs. A binary COPY would hand the client one message per reading, which
# costs more than the scan; the outer constant range lets TimescaleDB plan only the group's chunks.
_LOAD_SQL: Final = (
    "SELECT w.i, x.pairs"
    " FROM unnest(%s::int[], %s::bigint[], %s::float8[], %s::float8[]) AS w(i, sid, lo, hi)"
    " CROSS JOIN LATERAL (SELECT string_agg(timestamptz_send(r.ts) || float8send(r.value),"
    "   ''::bytea) AS pairs"
    "  FROM (SELECT r.ts, r.value FROM readings r WHERE r.series_id = w.sid"
    "   AND r.ts >= to_timestamp(w.lo) AND r.ts <= to_timestamp(w.hi)"
    "   AND r.ts >= to_timestamp(%s::float8) AND r.ts <= to_timestamp(%s::float8)"
    "   ORDER BY r.ts) r) x"
)
_READING_PAIR: Final = np.dtype([("ts", ">i8"), ("value", ">f8")])


def _keys(x: F64, width: float) -> I64:
    keys = np.full(x.shape[0], _INF_KEY, dtype=np.int64)
    finite = np.isfinite(x)
    keys[finite] = np.floor(x[finite] / width).astype(np.int64)
    keys[np.isneginf(x)] = -_INF_KEY
    return keys


def time_groups(lo: F64, hi: F64, *, max_groups: int = _MAX_GROUPS,
                width_s: float = _DAY_S) -> list[I64]:
    """Indices of ranges ``[lo[i], hi[i]]`` grouped by the day (``width_s``) their start and
    their end fall in (infinite ends form groups of their own). If that makes more than
    ``max_groups`` groups, the width doubles until it does not. Every index is in one group;
    within a group, indices ascend."""
    if max_groups < 1:
        raise ValueError("max_groups must be >= 1")
    if lo.shape != hi.shape:
        raise ValueError("lo and hi must have the same shape")
    if lo.shape[0] == 0:
        return []
    width = width_s
    while True:
        pairs = np.stack([_keys(lo, width), _keys(hi, width)], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        if uniq.shape[0] <= max_groups or width > 1e12:
            break
        width *= 2
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    cuts = np.searchsorted(inverse[order], np.arange(1, uniq.shape[0]))
    return [g.astype(np.int64) for g in np.split(order, cuts)]


def _epoch(t: datetime) -> float:
    return t.timestamp()


def _outside(conn: Conn, query: str, sids: list[int], at: datetime) -> set[int]:
    if not sids:
        return set()
    rows = conn.execute(query, {"sid": sids, "at": at}, prepare=False).fetchall()
    return {int(r[0]) for r in rows}


def window_bounds(
    conn: Conn,
    sids: Sequence[int],
    ts_from: Sequence[datetime],
    ts_to: Sequence[datetime],
    *,
    k: Sequence[int],
    margin_s: Sequence[float],
    group_width_s: float = _DAY_S,
) -> list[WindowBounds]:
    """For each series: ``lo`` = the 15-minute bin of its ``k[i]+1``-th reading before
    ``ts_from`` (else of its first reading, else of ``ts_from``), ``hi`` = the end of the bin of
    its ``k[i]+1``-th reading after ``ts_to`` (else of its last reading at or after it, else of
    ``ts_to``), and the ``k[i]+1``-th reading before ``lo`` / at or after ``hi`` (or -inf/+inf).
    Neighbours are first searched within ``margin_s[i]`` of the range (one bounded statement per
    time group, ``group_width_s``: a day on TimescaleDB, a partition on plain PostgreSQL); the
    series left unsettled are looked up without margins."""
    if not sids:
        return []
    a = np.asarray([_epoch(t) for t in ts_from])
    b = np.asarray([_epoch(t) for t in ts_to])
    m = np.asarray(margin_s, dtype=np.float64)
    out: list[WindowBounds] = []
    again: list[int] = []
    for g in time_groups(a - m, b + m, width_s=group_width_s):
        span = timedelta(seconds=float(m[g].max()))
        bounds = {
            "l": min(ts_from[i] for i in g) - span,
            "f": max(ts_from[i] for i in g),
            "t": min(ts_to[i] for i in g),
            "u": max(ts_to[i] for i in g) + span,
        }
        rows = conn.execute(
            _BOUNDED_SQL,
            {"sid": [sids[i] for i in g], "a": [ts_from[i] for i in g],
             "b": [ts_to[i] for i in g], "k": [k[i] for i in g], **bounds},
            prepare=False,
        ).fetchall()
        below = _outside(conn, _BELOW_SQL,
                         [r[0] for r in rows if not (r[5] and r[3] is not None)], bounds["l"])
        beyond = _outside(conn, _BEYOND_SQL,
                          [r[0] for r in rows if not (r[6] and r[4] is not None)], bounds["u"])
        for i, (sid, lo, hi, load_from, load_to, lf, hf) in zip(g, rows, strict=True):
            lower = (lf and load_from is not None) or sid not in below
            upper = (hf and load_to is not None) or sid not in beyond
            if not (lower and upper):
                again.append(int(i))
                continue
            down = float("-inf") if load_from is None else float(load_from)
            up = float("inf") if load_to is None else float(load_to)
            out.append((int(sid), float(lo), float(hi), down, up))
    if again:
        rows = conn.execute(
            _UNBOUNDED_SQL,
            ([sids[i] for i in again], [ts_from[i] for i in again],
             [ts_to[i] for i in again], [k[i] for i in again]),
            prepare=False,
        ).fetchall()
        out += [(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows]
    return out


def load_ranges(
    conn: Conn, sids: Sequence[int], lo: Sequence[float], hi: Sequence[float],
    *, group_width_s: float = _DAY_S,
) -> tuple[I64, F64, F64]:
    """The readings of ``sids[i]`` in ``[lo[i], hi[i]]`` (Unix s, ±inf allowed) as
    ``(i, ts, value)`` arrays ordered by ``i`` then time: one binary COPY per time group
    (``group_width_s`` as for :func:`window_bounds`), bounded by the group's constant range."""
    n = len(sids)
    lo_a = np.asarray(lo, dtype=np.float64)
    hi_a = np.asarray(hi, dtype=np.float64)
    found: dict[int, tuple[I64, F64]] = {}
    for g in time_groups(lo_a, hi_a, width_s=group_width_s):
        rows = conn.execute(
            _LOAD_SQL,
            (g.tolist(), [sids[i] for i in g], lo_a[g].tolist(), hi_a[g].tolist(),
             float(lo_a[g].min()), float(hi_a[g].max())),
            binary=True, prepare=False,
        ).fetchall()
        for i, packed in rows:
            if packed is None:
                continue
            pairs = np.frombuffer(packed, dtype=_READING_PAIR)
            us = pairs["ts"].astype(np.int64)
            values = pairs["value"].astype(np.float64)
            if us.shape[0] > 1 and not bool(np.all(us[1:] >= us[:-1])):
                order = np.argsort(us, kind="stable")
                us, values = us[order], values[order]
            found[int(i)] = (us, values)
    if not found or n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    keys = sorted(found)
    idx = np.concatenate([np.full(found[k][0].shape[0], k, dtype=np.int64) for k in keys])
    ts = np.concatenate([found[k][0] for k in keys]).astype(np.float64) / 1e6 + _PG_EPOCH_S
    return idx, ts, np.concatenate([found[k][1] for k in keys])
