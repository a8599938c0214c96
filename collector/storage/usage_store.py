"""Incremental maintenance of ``usage_15m`` from ``usage_dirty`` (the usage engine's adapter).

``refresh_usage(conn, now)`` runs ONE transaction: it deletes a batch of ``usage_dirty`` rows
(``DELETE … RETURNING``), loads the readings of the affected series around the dirty ranges,
re-derives their 15-minute usage with the pure core (:mod:`collector.usage`) and upserts it.
A crash anywhere before COMMIT rolls the deletion back too, so no dirty range is ever lost.
Rows are only rewritten when their content changed (``updated_at`` then moves, which billing
uses to detect late usage); buckets that lost all usage are zeroed, never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from collector.storage.database import translate_errors
from collector.storage.reading_lookups import DAY_S, MONTH_S, load_ranges, window_bounds
from collector.storage.usage_fleet import apply_stage_deltas
from collector.storage.usage_meters import SeriesMeta, load_meta
from collector.usage import BUCKET_15M_S, LoadPlanner, SeriesBatch, derive_many, find_long_gaps

__all__ = [
    "RefreshReport", "TakenDirty", "refresh_rollups", "refresh_usage", "take_dirty",
    "uses_timescale",
]

Conn = psycopg.Connection[Any]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_LOCK_KEY: Final = 7_161_110  # advisory lock: one refresher at a time
_MAX_CELLS: Final = 2_000_000  # series × buckets derived per chunk
_WEEK_S: Final = 7 * 86400.0
_DAY: Final = timedelta(days=1)
_NEIGHBOUR_SPAN: Final = 2.0  # neighbours are first searched within 2x their expected spacing
MAX_LOADED: Final = 2_000_000  # readings held at once by one pass (``LoadPlanner``)
_EMPTY: Final = np.zeros(0)


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one ``refresh_usage`` call did."""

    dirty_rows: int
    series: int
    readings_loaded: int
    buckets_written: int
    busy: bool = False  # another refresher held the lock; nothing was done
    more: bool = False  # dirty ranges were left for a next pass
    oldest_wait_s: float | None = None  # how long the oldest range taken had waited


@dataclass(slots=True)
class _Window:
    """Readings ``[load_from, load_to]`` of a series are derived; buckets ``[lo, hi)`` written."""

    meta: SeriesMeta
    lo: float
    hi: float
    load_from: float
    load_to: float
    ts: F64
    values: F64


@dataclass(frozen=True, slots=True)
class TakenDirty:
    """Dirty ranges removed from the queue for one pass, coalesced to one range per series."""

    rows: int
    ranges: dict[int, tuple[datetime, datetime]]
    more: bool  # ranges of other series are still queued
    oldest_wait_s: float | None  # age of the oldest range taken (database clock), if any


def take_dirty(conn: Conn, limit: int) -> TakenDirty:
    """Take the work of one pass from ``usage_dirty`` (inside the caller's transaction).

    Up to ``limit`` series are picked: half from the newest queued ranges, so that what was
    just committed becomes visible first even behind a backlog, and half from the oldest
    ones, so that a backlog still shrinks from its far end on every pass and no range waits
    forever (``limit`` 1 takes only the oldest). All queued ranges of a picked series are
    taken at once and merged, so a series is derived once per pass however many flushes
    queued it.
    """
    old = max(1, limit // 2)
    new = limit - old
    rows = conn.execute(
        "WITH pick AS ("
        " SELECT series_id FROM (SELECT series_id FROM usage_dirty ORDER BY id DESC"
        "  LIMIT %(new)s) n"
        " UNION SELECT series_id FROM (SELECT series_id FROM usage_dirty ORDER BY id"
        "  LIMIT %(old)s) o)"
        " DELETE FROM usage_dirty d USING pick p WHERE d.series_id = p.series_id"
        " RETURNING d.series_id, d.ts_from, d.ts_to,"
        "  extract(epoch FROM clock_timestamp() - d.queued_at)::float8",
        {"new": new, "old": old},
    ).fetchall()
    ranges: dict[int, tuple[datetime, datetime]] = {}
    for sid, a, b, _ in rows:
        seen = ranges.get(int(sid))
        ranges[int(sid)] = (min(seen[0], a), max(seen[1], b)) if seen else (a, b)
    left = conn.execute("SELECT EXISTS (SELECT 1 FROM usage_dirty)").fetchone()
    oldest = max((float(r[3]) for r in rows), default=None)
    return TakenDirty(len(rows), ranges, bool(left and left[0]), oldest)


def uses_timescale(conn: Conn) -> bool:
    """True when the usage schema was created by the TimescaleDB flavour."""
    row = conn.execute(
        "SELECT flavour FROM tally_schema_migrations WHERE version = 10"
    ).fetchone()
    return row is not None and row[0] == "timescale"


def _group_width(conn: Conn) -> float:
    """How far apart lookups may lie and still share one statement: a day or a partition."""
    return DAY_S if uses_timescale(conn) else MONTH_S


def _windows(conn: Conn, dirty: dict[int, tuple[datetime, datetime]],
             meta: dict[int, SeriesMeta]) -> list[_Window]:
    """The derivation window of each dirty series (:func:`window_bounds`: one statement per
    time group, bounded so that TimescaleDB plans only the chunks around the dirty ranges)."""
    sids = [s for s in dirty if s in meta]
    if not sids:
        return []
    k = [meta[s].config.glitch_window + 1 for s in sids]
    margin = [_NEIGHBOUR_SPAN * (2 * n + 2) * meta[s].config.expected_interval_s + BUCKET_15M_S
              for s, n in zip(sids, k, strict=True)]
    rows = window_bounds(conn, sids, [dirty[s][0] for s in sids], [dirty[s][1] for s in sids],
                         k=k, margin_s=margin, group_width_s=_group_width(conn))
    empty = np.zeros(0)
    return [_Window(meta[r[0]], r[1], r[2], r[3], r[4], empty, empty) for r in rows]


def _load(conn: Conn, windows: Sequence[_Window], history: bool = False) -> int:
    """Fill ``ts``/``values`` of the windows (``history``: prepend profile history).

    The server packs each window's readings into one byte string of (timestamp, value)
    pairs, read in index order, so a window costs one result row however many readings it
    holds (a COPY hands them over one message per reading, which costs more than the
    derivation). The pairs are put in time order here if they did not arrive in it.
    """
    if not windows:
        return 0
    lo = [w.load_from for w in windows]
    if history:
        lo = [w.load_from - w.meta.config.profile_weeks * _WEEK_S for w in windows]
    idx, ts, values = load_ranges(
        conn,
        [w.meta.series_id for w in windows],
        [min(a, w.load_from) for a, w in zip(lo, windows, strict=True)],
        [w.load_to for w in windows],
        group_width_s=_group_width(conn),
    )
    bounds = np.searchsorted(idx, np.arange(len(windows) + 1))
    for i, w in enumerate(windows):
        w.ts = ts[bounds[i] : bounds[i + 1]]
        w.values = values[bounds[i] : bounds[i + 1]]
    return int(idx.shape[0])


def _needs_history(w: _Window) -> bool:
    cfg = w.meta.config
    if cfg.profile_weeks == 0 or w.ts.shape[0] < 2:
        return False
    starts = find_long_gaps(w.ts, cfg)
    return bool(np.any(starts < w.hi))


def _chunks(windows: list[_Window]) -> list[list[_Window]]:
    windows = sorted(windows, key=lambda w: w.lo)
    chunks: list[list[_Window]] = []
    cur: list[_Window] = []
    lo = hi = 0.0
    for w in windows:
        nlo, nhi = (min(lo, w.lo), max(hi, w.hi)) if cur else (w.lo, w.hi)
        if cur and (nhi - nlo) / BUCKET_15M_S * (len(cur) + 1) > _MAX_CELLS:
            chunks.append(cur)
            cur, nlo, nhi = [], w.lo, w.hi
        cur.append(w)
        lo, hi = nlo, nhi
    if cur:
        chunks.append(cur)
    return chunks


_STAGE_ROW: Final = np.dtype(
    [
        ("n", ">i2"),
        ("l_sid", ">i4"), ("sid", ">i8"),
        ("l_bucket", ">i4"), ("bucket", ">i8"),
        ("l_q", ">i4"), ("q", ">f8"),
        ("l_e", ">i4"), ("e", ">f8"),
        ("l_qu", ">i4"), ("qu", ">f8"),
        ("l_c", ">i4"), ("c", ">f8"),
        ("l_rc", ">i4"), ("rc", ">i4"),
        ("l_f", ">i4"), ("f", ">i4"),
        ("l_p", ">i4"), ("p", ">f8"),
    ]
)
_COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_PG_EPOCH_S: Final = 946_684_800


def _derive_rows(chunk: list[_Window]) -> npt.NDArray[np.void]:
    """Derived buckets ``[lo, hi)`` of every window, as binary COPY rows for the stage."""
    e0 = min(w.lo for w in chunk)
    e1 = max(w.hi for w in chunk)
    edges = np.arange(e0, e1 + 1, BUCKET_15M_S, dtype=np.float64).astype(np.int64)
    offsets = np.zeros(len(chunk) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([w.ts.shape[0] for w in chunk])
    batch = SeriesBatch(
        offsets,
        np.concatenate([w.ts for w in chunk]),
        np.concatenate([w.values for w in chunk]),
        [w.meta.kind for w in chunk],
        [w.meta.config for w in chunk],
        {i: w.meta.replacements for i, w in enumerate(chunk) if w.meta.replacements},
    )
    m = derive_many(batch, edges)
    j0 = np.asarray([round((w.lo - e0) / BUCKET_15M_S) for w in chunk], dtype=np.int64)
    j1 = np.asarray([round((w.hi - e0) / BUCKET_15M_S) for w in chunk], dtype=np.int64)
    lens = j1 - j0
    row = np.repeat(np.arange(len(chunk)), lens)
    col = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens) + j0[row]
    rows = np.empty(row.shape[0], dtype=_STAGE_ROW)
    rows["n"] = 9
    for f in ("l_sid", "l_bucket", "l_q", "l_e", "l_qu", "l_c", "l_p"):
        rows[f] = 8
    rows["l_rc"] = 4
    rows["l_f"] = 4
    rows["sid"] = np.asarray([w.meta.series_id for w in chunk], dtype=np.int64)[row]
    rows["bucket"] = (edges[col] - _PG_EPOCH_S) * 1_000_000
    rows["q"] = m.quantity[row, col]
    rows["e"] = m.estimated[row, col]
    rows["qu"] = m.quarantined[row, col]
    rows["c"] = m.coverage[row, col]
    rows["rc"] = m.reading_count[row, col]
    rows["f"] = m.flags[row, col]
    rows["p"] = m.peak[row, col]  # NaN = no peak; NULL after staging
    return rows


def _write(conn: Conn, rows: npt.NDArray[np.void], now: datetime) -> int:
    """Upsert staged rows: changed buckets are rewritten, emptied ones zeroed, others kept."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS usage_stage (series_id bigint, bucket timestamptz,"
        " quantity float8, estimated float8, quarantined float8, coverage float8,"
        " reading_count int, flags int, peak float8) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur, cur.copy("COPY usage_stage FROM STDIN (FORMAT BINARY)") as cp:
        cp.write(_COPY_HEADER + rows.tobytes() + b"\xff\xff")
    apply_stage_deltas(conn)  # the fleet rollup, before usage_15m changes
    cur_ins = conn.execute(
        "INSERT INTO usage_15m AS u (series_id, bucket, quantity, estimated, quarantined,"
        "  coverage, reading_count, flags, peak, updated_at)"
        " SELECT series_id, bucket, quantity, estimated, quarantined, coverage, reading_count,"
        "  flags, nullif(peak, 'NaN'), %s FROM usage_stage s"
        " WHERE s.coverage > 0 OR s.reading_count > 0 OR s.flags <> 0 OR s.quarantined <> 0"
        "  OR s.quantity <> 0"
        " ON CONFLICT (series_id, bucket) DO UPDATE SET quantity = excluded.quantity,"
        "  estimated = excluded.estimated, quarantined = excluded.quarantined,"
        "  coverage = excluded.coverage, reading_count = excluded.reading_count,"
        "  flags = excluded.flags, peak = excluded.peak, updated_at = excluded.updated_at"
        " WHERE (u.quantity, u.estimated, u.quarantined, u.coverage, u.reading_count, u.flags,"
        "  u.peak) IS DISTINCT FROM (excluded.quantity, excluded.estimated, excluded.quarantined,"
        "  excluded.coverage, excluded.reading_count, excluded.flags, excluded.peak)",
        (now,),
    )
    cur_zero = conn.execute(
        "UPDATE usage_15m u SET quantity = 0, estimated = 0, quarantined = 0, coverage = 0,"
        " reading_count = 0, flags = 0, peak = NULL, updated_at = %s FROM usage_stage s"
        " WHERE u.series_id = s.series_id AND u.bucket = s.bucket AND s.coverage = 0"
        "  AND s.reading_count = 0 AND s.flags = 0 AND s.quarantined = 0 AND s.quantity = 0"
        "  AND (u.quantity <> 0 OR u.estimated <> 0 OR u.quarantined <> 0 OR u.coverage <> 0"
        "   OR u.reading_count <> 0 OR u.flags <> 0 OR u.peak IS NOT NULL)",
        (now,),
    )
    conn.execute("TRUNCATE usage_stage")
    return max(cur_ins.rowcount, 0) + max(cur_zero.rowcount, 0)


def _refresh_daily(conn: Conn, windows: Sequence[_Window], now: datetime) -> None:
    """Re-pack the UTC days the windows touched into usage_15m_daily (96 slots per day); days
    without any usage_15m row are skipped (a window may span years after a clock jump)."""
    lo = min(w.lo for w in windows)
    day0 = lo - lo % 86400.0  # the first UTC day touched
    conn.execute(
        "WITH p AS (SELECT DISTINCT w.sid, d AS day"
        "   FROM unnest(%(sid)s::bigint[], %(lo)s::float8[], %(hi)s::float8[]) AS w(sid, lo, hi),"
        "   generate_series(date_trunc('day', to_timestamp(w.lo), 'UTC'),"
        "     to_timestamp(w.hi) - interval '1 microsecond', interval '24 hours') AS d"
        "   WHERE EXISTS (SELECT 1 FROM usage_15m x WHERE x.series_id = w.sid"
        "     AND x.bucket >= d AND x.bucket < d + interval '24 hours'"
        "     AND x.bucket >= %(d0)s AND x.bucket < %(d1)s)"
        "   OR EXISTS (SELECT 1 FROM usage_15m_daily y WHERE y.series_id = w.sid AND y.day = d))"
        " INSERT INTO usage_15m_daily AS t (series_id, day, quantity, estimated,"
        "  reading_count, updated_at)"
        " SELECT p.sid, p.day, a.q, a.e, a.rc, %(now)s FROM p CROSS JOIN LATERAL ("
        "  SELECT string_agg(float8send(coalesce(u.quantity, 0)), ''::bytea ORDER BY k) AS q,"
        "   string_agg(float8send(coalesce(u.estimated, 0)), ''::bytea ORDER BY k) AS e,"
        "   string_agg(int4send(coalesce(u.reading_count, 0)), ''::bytea ORDER BY k) AS rc"
        "  FROM generate_series(0, 95) AS k LEFT JOIN ("
        "   SELECT x.bucket, x.quantity, x.estimated, x.reading_count FROM usage_15m x"
        "   WHERE x.series_id = p.sid AND x.bucket >= p.day"
        "   AND x.bucket < p.day + interval '24 hours'"
        "   AND x.bucket >= %(d0)s AND x.bucket < %(d1)s) AS u"
        "  ON u.bucket = p.day + k * interval '15 minutes') AS a"
        " ON CONFLICT (series_id, day) DO UPDATE SET quantity = excluded.quantity,"
        "  estimated = excluded.estimated, reading_count = excluded.reading_count,"
        "  updated_at = excluded.updated_at"
        " WHERE (t.quantity, t.estimated, t.reading_count)"
        "  IS DISTINCT FROM (excluded.quantity, excluded.estimated, excluded.reading_count)",
        {
            "sid": [w.meta.series_id for w in windows],
            "lo": [w.lo for w in windows],
            "hi": [w.hi for w in windows],
            "now": now,
            # constant bounds of every usage_15m lookup: TimescaleDB plans only their chunks
            "d0": datetime.fromtimestamp(day0, UTC),
            "d1": datetime.fromtimestamp(max(w.hi for w in windows), UTC) + _DAY,
        },
        prepare=False,
    )


def refresh_usage(
    conn: Conn, now: datetime, *, limit: int = 5000, rollups: bool = True,
    max_readings: int = MAX_LOADED,
) -> RefreshReport:
    """Take the dirty ranges of up to ``limit`` series (:func:`take_dirty`) and re-derive
    the affected usage, in one transaction.

    The windows are loaded, derived and written in groups of at most about ``max_readings``
    readings (:class:`~collector.usage.LoadPlanner`), so the memory a pass holds does not grow
    with the number of series or their reading rate.

    Returns a report with ``busy=True`` (nothing done) when another refresher holds the lock.
    On a TimescaleDB schema and an autocommit connection, the continuous aggregates are
    refreshed afterwards unless ``rollups`` is False (the caller then runs
    :func:`refresh_rollups` itself, e.g. under the owner role, and reports its outcome).
    """
    with translate_errors("refresh usage"):
        with conn.transaction():
            got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_KEY,)).fetchone()
            if not (got and got[0]):
                return RefreshReport(0, 0, 0, 0, busy=True)
            # small, index-driven statements whose row estimates (unnest, generate_series)
            # are far too high: JIT compilation would cost more than the work itself
            conn.execute("SET LOCAL jit = off")
            taken = take_dirty(conn, limit)
            rows, dirty = taken.rows, taken.ranges
            meta = load_meta(conn, list(dirty))
            windows = sorted(_windows(conn, dirty, meta), key=lambda w: w.lo)
            loaded, written, derived = _derive_in_groups(conn, windows, now, max_readings)
            if derived:
                _refresh_daily(conn, derived, now)
            timescale = uses_timescale(conn)
            if timescale and windows:
                conn.execute(
                    "INSERT INTO usage_rollup_pending (ts_from, ts_to)"
                    " VALUES (to_timestamp(%s), to_timestamp(%s))",
                    (min(w.lo for w in windows), max(w.hi for w in windows)),
                )
        if rollups and timescale and conn.autocommit:
            refresh_rollups(conn)
    return RefreshReport(rows, len(windows), loaded, written, more=taken.more,
                         oldest_wait_s=taken.oldest_wait_s)


def _derive_in_groups(conn: Conn, windows: list[_Window], now: datetime,
                      max_readings: int) -> tuple[int, int, list[_Window]]:
    """Load, derive and write ``windows`` group by group; each group's readings are released
    before the next loads. Returns (readings loaded, buckets written, windows with readings)."""
    planner = LoadPlanner(max_readings)
    loaded = written = 0
    derived: list[_Window] = []
    spans = np.asarray([w.hi - w.lo for w in windows], dtype=np.float64)  # buckets written
    start = 0
    while start < len(windows):
        group = windows[start : start + planner.take(spans[start:])]
        loaded += _load(conn, group)
        planner.observe(spans[start : start + len(group)], [w.ts.shape[0] for w in group])
        start += len(group)
        loaded += _load(conn, [w for w in group if _needs_history(w)], history=True)
        ready = [w for w in group if w.ts.shape[0]]
        for chunk in _chunks(ready):
            written += _write(conn, _derive_rows(chunk), now)
        for w in group:
            w.ts = w.values = _EMPTY
        derived += ready
    return loaded, written, derived


def refresh_rollups(conn: Conn, *, owner_role: str | None = None) -> int:
    """Refresh the continuous aggregates over every pending changed range (autocommit conn).

    Each range is removed only after both aggregates were refreshed; returns ranges done.
    TimescaleDB lets only the aggregates' owner refresh them: with ``owner_role`` the refresh
    runs under ``SET ROLE owner_role`` (the connecting role must be a member of it) and the
    session's own role is restored afterwards.
    """
    with translate_errors("refresh usage rollups"):
        if owner_role is None:
            return _refresh_pending(conn)
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner_role)))
        try:
            return _refresh_pending(conn)
        finally:
            if not conn.closed and not conn.broken:
                conn.execute("RESET ROLE")


def _refresh_pending(conn: Conn) -> int:
    done = 0
    pending = conn.execute(
        "SELECT id, date_trunc('day', ts_from, 'UTC'),"
        " date_trunc('day', ts_to, 'UTC') + interval '1 day'"
        " FROM usage_rollup_pending ORDER BY id"
    ).fetchall()
    for pid, lo, hi in pending:
        conn.execute("CALL refresh_continuous_aggregate('usage_1h', %s, %s)", (lo, hi))
        conn.execute("CALL refresh_continuous_aggregate('usage_1d', %s, %s)", (lo, hi))
        conn.execute("DELETE FROM usage_rollup_pending WHERE id = %s", (pid,))
        done += 1
    return done


# shared with collector.storage.usage_backfill (the bulk path over the same steps)
Window = _Window
COPY_HEADER: Final = _COPY_HEADER
LOCK_KEY: Final = _LOCK_KEY
PG_EPOCH_S: Final = _PG_EPOCH_S
derive_windows = _windows
load_windows = _load
needs_history = _needs_history
split_chunks = _chunks
derive_rows = _derive_rows
write_stage = _write
refresh_daily = _refresh_daily
