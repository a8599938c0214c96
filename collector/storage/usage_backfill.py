"""Bulk derivation of ``usage_15m`` from raw readings over a time range (backfill).

The incremental refresh (:mod:`collector.storage.usage_store`) is built for many small ranges:
index lookups per series, a server-side sort, and daily packing in SQL. Re-deriving a month of
every series that way ran at about 80,000 readings/s. A backfill instead, per group of series
and in one transaction under the refresher's advisory lock:

1. finds each series' window exactly as the incremental refresh does (the readings around the
   range that the glitch filter and the bucket edges need);
2. reads every reading of the group in the loaded span with ONE sequential binary ``COPY ... TO
   STDOUT`` (no ``ORDER BY``: rows are sorted by series and time with numpy, which costs a
   fraction of PostgreSQL's external sort);
3. derives the buckets with the numpy core, stages them with a binary ``COPY`` and writes them
   with one ``INSERT ... ON CONFLICT`` per chunk (the same statements as the refresh, so rows
   whose content did not change are left alone);
4. packs the days that lie wholly inside a window into ``usage_15m_daily`` from the derived
   arrays (the refresh's SQL packing is used only for the partial days at the window edges).

The result is the same ``usage_15m`` and ``usage_15m_daily`` content as draining the same
ranges through ``refresh_usage`` (``tests/collector/operations/test_usage_backfill.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg

from collector.storage.database import translate_errors
from collector.storage.usage_fleet import apply_stage_deltas
from collector.storage.usage_meters import load_meta
from collector.storage.usage_store import (
    COPY_HEADER,
    LOCK_KEY,
    PG_EPOCH_S,
    Window,
    derive_rows,
    derive_windows,
    load_windows,
    needs_history,
    refresh_daily,
    split_chunks,
)
from collector.usage import BUCKET_15M_S

__all__ = ["BackfillReport", "backfill_usage", "parse_series_arrays", "run_backfill"]

Conn = psycopg.Connection[Any]
_DAY_S: Final = 86_400
_DAILY_ROW: Final = np.dtype(
    [("n", ">i2"), ("l_sid", ">i4"), ("sid", ">i8"), ("l_day", ">i4"), ("day", ">i8"),
     ("l_q", ">i4"), ("q", ">f8", (96,)), ("l_e", ">i4"), ("e", ">f8", (96,)),
     ("l_rc", ">i4"), ("rc", ">i4", (96,)), ("empty", ">i2")]
)


@dataclass(frozen=True, slots=True)
class BackfillReport:
    """What one ``backfill_usage`` call did."""

    series: int
    readings_loaded: int
    buckets_written: int
    days_packed: int


def backfill_usage(
    conn: Conn, now: datetime, ts_from: datetime, ts_to: datetime, *,
    series_ids: Sequence[int] | None = None, group_size: int = 2000,
    group_readings: int = 5_000_000,
) -> BackfillReport:
    """Re-derive the usage of ``series_ids`` (default: every series) for ``[ts_from, ts_to]``.

    Series are processed in groups of at most ``group_size`` series and about
    ``group_readings`` readings (the planner's estimate; memory is about 50 bytes per reading
    of a group), each group in its own transaction holding the usage refresher's lock (a
    running refresh is waited for, not interrupted).
    """
    if ts_to < ts_from:
        raise ValueError("ts_to is before ts_from")
    with translate_errors("backfill usage"):
        every = series_ids is None
        if series_ids is None:
            series_ids = [int(r[0]) for r in conn.execute(
                "SELECT series_id FROM series ORDER BY series_id").fetchall()]
        group_size = _group_size(conn, ts_from, ts_to, group_size, group_readings)
        total = BackfillReport(0, 0, 0, 0)
        for i in range(0, len(series_ids), group_size):
            group = list(series_ids[i:i + group_size])
            rep = _backfill_group(conn, now, ts_from, ts_to, group,
                                  scan_all=every and len(series_ids) <= group_size)
            total = BackfillReport(total.series + rep.series,
                                   total.readings_loaded + rep.readings_loaded,
                                   total.buckets_written + rep.buckets_written,
                                   total.days_packed + rep.days_packed)
        return total


def _backfill_group(conn: Conn, now: datetime, ts_from: datetime, ts_to: datetime,
                    sids: list[int], *, scan_all: bool) -> BackfillReport:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("SET LOCAL jit = off")
        meta = load_meta(conn, sids)
        windows = derive_windows(conn, {s: (ts_from, ts_to) for s in sids}, meta)
        loaded = _scan(conn, windows, scan_all=scan_all)
        again = [w for w in windows if needs_history(w)]
        loaded += load_windows(conn, again, history=True)
        derived = [w for w in windows if w.ts.shape[0]]
        written = days = 0
        edges: list[Window] = []
        for chunk in split_chunks(derived):
            rows = derive_rows(chunk)
            written += _write_buckets(conn, rows, now)
            packed, partial = _daily_rows(chunk, rows)
            days += _write_daily(conn, packed, now)
            edges += partial
        if edges:
            refresh_daily(conn, edges, now)
        if windows and _timescale(conn):
            conn.execute(
                "INSERT INTO usage_rollup_pending (ts_from, ts_to)"
                " VALUES (to_timestamp(%s), to_timestamp(%s))",
                (min(w.lo for w in windows), max(w.hi for w in windows)),
            )
    return BackfillReport(len(derived), loaded, written, days)


def run_backfill(dsn: str, ts_from: datetime, ts_to: datetime,
                 series_ids: Sequence[int] | None = None) -> BackfillReport:
    """:func:`backfill_usage` on a connection of its own (the CLI's entry)."""
    with translate_errors("backfill usage"), psycopg.connect(dsn, autocommit=True) as conn:
        return backfill_usage(conn, datetime.now(UTC), ts_from, ts_to, series_ids=series_ids)


def _group_size(conn: Conn, ts_from: datetime, ts_to: datetime, most: int,
                readings: int) -> int:
    """Series per group so that a group holds about ``readings`` readings."""
    plan = conn.execute(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM readings WHERE ts >= %s AND ts <= %s",
        (ts_from, ts_to),
    ).fetchone()
    n_series = conn.execute("SELECT count(*) FROM series").fetchone()
    if not plan or not n_series or not n_series[0]:
        return most
    rows = float(plan[0][0]["Plan"]["Plan Rows"])
    per_series = max(rows / float(n_series[0]), 1.0)
    return max(1, min(most, int(readings / per_series)))


def _timescale(conn: Conn) -> bool:
    row = conn.execute(
        "SELECT flavour FROM tally_schema_migrations WHERE version = 10").fetchone()
    return row is not None and row[0] == "timescale"


def _scan(conn: Conn, windows: Sequence[Window], *, scan_all: bool) -> int:
    """Fill the windows' readings from one sequential scan of the span they cover.

    PostgreSQL sends one COPY message per row, and receiving a million messages costs the
    client seconds; ``array_agg`` per series turns them into one message per series (arrays
    in binary), and numpy sorts each series' readings by time.
    """
    if not windows:
        return 0
    lo = min(w.load_from for w in windows)
    hi = max(w.load_to for w in windows)
    where = ["TRUE"]
    params: list[Any] = []
    if not scan_all:
        where.append("series_id = ANY(%s)")
        params.append([w.meta.series_id for w in windows])
    if math.isfinite(lo):
        where.append("ts >= to_timestamp(%s)")
        params.append(lo)
    if math.isfinite(hi):
        where.append("ts <= to_timestamp(%s)")
        params.append(hi)
    query = ("COPY (SELECT series_id, array_agg(ts), array_agg(value) FROM readings"
             " WHERE {} GROUP BY series_id) TO STDOUT (FORMAT BINARY)")
    conn.execute("SET LOCAL work_mem = '512MB'")  # the per-series arrays: hash in memory
    by_sid: dict[int, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = {}
    with conn.cursor() as cur, cur.copy(query.format(" AND ".join(where)), params) as cp:
        for data in cp:
            got = _parse_series_row(data)
            if got is not None:
                by_sid[got[0]] = (got[1], got[2])
    _add_archived(conn, windows, by_sid, lo, hi)
    empty = np.zeros(0)
    n = 0
    for w in windows:
        ts, values = by_sid.get(w.meta.series_id, (empty, empty))
        if ts.shape[0] > 1 and np.any(ts[1:] < ts[:-1]):
            order = np.argsort(ts, kind="stable")
            ts, values = ts[order], values[order]
        i = int(np.searchsorted(ts, w.load_from, side="left"))
        j = int(np.searchsorted(ts, w.load_to, side="right"))
        w.ts, w.values = ts[i:j], values[i:j]
        n += j - i
    return n


def _add_archived(
    conn: Conn, windows: Sequence[Window],
    by_sid: dict[int, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]],
    lo: float, hi: float,
) -> None:
    """Add the readings of archived months (Parquet) that the windows reach into."""
    from collector.storage.archive_store import (  # noqa: PLC0415 - archive imports this module
        archived_entries,
        read_archived,
    )

    a = datetime.fromtimestamp(max(lo, 0.0), UTC)
    b = datetime.fromtimestamp(min(hi, 32503680000.0), UTC)  # the year 3000 for +infinity
    if not archived_entries(conn, a, b):
        return
    rows = read_archived(conn, [w.meta.series_id for w in windows], a, b)
    if not len(rows):
        return
    ts = rows.ts_us.astype(np.float64) / 1e6 + PG_EPOCH_S
    bounds = np.searchsorted(rows.series_id, np.unique(rows.series_id))
    for start, end in zip(bounds, [*bounds[1:], len(rows)], strict=True):
        sid = int(rows.series_id[start])
        old_ts, old_v = by_sid.get(sid, (np.zeros(0), np.zeros(0)))
        by_sid[sid] = (np.concatenate([ts[start:end], old_ts]),
                       np.concatenate([rows.value[start:end], old_v]))


_ELEM_I8: Final = np.dtype([("l", ">i4"), ("v", ">i8")])
_ELEM_F8: Final = np.dtype([("l", ">i4"), ("v", ">f8")])


def parse_series_arrays(
    data: bytes | bytearray | memoryview,
) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """One binary COPY row ``(bigint, timestamptz[], float8[])`` as (series id, µs since
    2000-01-01 UTC, values); None for the trailer."""
    buf = memoryview(data)
    if buf[:len(COPY_HEADER)] == COPY_HEADER:
        buf = buf[len(COPY_HEADER):]
    if len(buf) < 2 or int.from_bytes(buf[:2], "big", signed=True) != 3:
        return None
    sid = int.from_bytes(buf[6:14], "big", signed=True)
    pos = 14
    arrays: list[npt.NDArray[Any]] = []
    for dtype in (_ELEM_I8, _ELEM_F8):
        size = int.from_bytes(buf[pos:pos + 4], "big", signed=True)
        arr = buf[pos + 4:pos + 4 + size]
        ndim = int.from_bytes(arr[:4], "big")
        head = 12 + 8 * ndim
        count = int.from_bytes(arr[12:16], "big") if ndim else 0
        arrays.append(np.frombuffer(arr[head:head + count * 12], dtype=dtype)["v"])
        pos += 4 + size
    return sid, arrays[0].astype(np.int64), arrays[1].astype(np.float64)


def _parse_series_row(
    data: bytes | bytearray | memoryview,
) -> tuple[int, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    got = parse_series_arrays(data)
    if got is None:
        return None
    sid, ts_us, values = got
    return sid, ts_us.astype(np.float64) / 1e6 + PG_EPOCH_S, values


def _daily_rows(
    chunk: Sequence[Window], rows: npt.NDArray[np.void]
) -> tuple[npt.NDArray[np.void], list[Window]]:
    """``usage_15m_daily`` rows of the UTC days that lie wholly inside a window, from the
    derived stage rows, and the windows' partial edge days (packed by SQL instead)."""
    packed: list[npt.NDArray[np.void]] = []
    partial: list[Window] = []
    lens = [round((w.hi - w.lo) / BUCKET_15M_S) for w in chunk]  # derive_rows' layout
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    for k, w in enumerate(chunk):
        lo, hi = int(w.lo), int(w.hi)
        d0 = -(-lo // _DAY_S) * _DAY_S  # start of the first whole day
        d1 = hi // _DAY_S * _DAY_S  # end of the last whole day
        if d1 <= d0:
            partial.append(_edge(w, lo, hi))
            continue
        if lo < d0:
            partial.append(_edge(w, lo, d0))
        if hi > d1:
            partial.append(_edge(w, d1, hi))
        i = int(offsets[k]) + (d0 - lo) // BUCKET_15M_S
        ndays = (d1 - d0) // _DAY_S
        part = rows[i:i + ndays * 96]
        first = int(part["bucket"][0]) // 1_000_000 + PG_EPOCH_S if part.shape[0] else -1
        if part.shape[0] != ndays * 96 or first != d0:
            partial.append(_edge(w, d0, d1))  # not the expected grid: let SQL pack it
            continue
        out = np.empty(ndays, dtype=_DAILY_ROW)
        out["n"] = 5
        out["l_sid"] = 8
        out["sid"] = w.meta.series_id
        out["l_day"] = 8
        out["day"] = (d0 + np.arange(ndays, dtype=np.int64) * _DAY_S - PG_EPOCH_S) * 1_000_000
        # a bucket without usage has no usage_15m row: SQL packing reads it as 0 (+0.0)
        blank = ((part["c"] == 0) & (part["rc"] == 0) & (part["f"] == 0) & (part["qu"] == 0)
                 & (part["q"] == 0)).reshape(ndays, 96)
        out["l_q"] = 768
        out["q"] = np.where(blank, 0.0, part["q"].reshape(ndays, 96))
        out["l_e"] = 768
        out["e"] = np.where(blank, 0.0, part["e"].reshape(ndays, 96))
        out["l_rc"] = 384
        out["rc"] = part["rc"].reshape(ndays, 96)
        out["empty"] = blank.all(axis=1).astype(np.int16)
        packed.append(out)
    return (np.concatenate(packed) if packed else np.empty(0, dtype=_DAILY_ROW)), partial


def _edge(w: Window, lo: int, hi: int) -> Window:
    return Window(w.meta, float(lo), float(hi), w.load_from, w.load_to, w.ts, w.values)


def _write_buckets(conn: Conn, rows: npt.NDArray[np.void], now: datetime) -> int:
    """Write staged buckets: rows whose content changed are updated (emptied ones zeroed),
    missing non-empty ones inserted; the same outcome as the refresh's upsert, but a plain
    anti-join ``INSERT`` costs a third of ``ON CONFLICT`` for a range written the first time.
    The refresher's lock is held, so nothing else writes these rows meanwhile."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS usage_stage (series_id bigint, bucket timestamptz,"
        " quantity float8, estimated float8, quarantined float8, coverage float8,"
        " reading_count int, flags int, peak float8) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur, cur.copy("COPY usage_stage FROM STDIN (FORMAT BINARY)") as cp:
        cp.write(COPY_HEADER + rows.tobytes() + b"\xff\xff")
    conn.execute("ANALYZE usage_stage")
    apply_stage_deltas(conn)  # the fleet rollup, before usage_15m changes
    updated = conn.execute(
        "UPDATE usage_15m u SET quantity = s.quantity, estimated = s.estimated,"
        " quarantined = s.quarantined, coverage = s.coverage, reading_count = s.reading_count,"
        " flags = s.flags, peak = nullif(s.peak, 'NaN'), updated_at = %s FROM usage_stage s"
        " WHERE u.series_id = s.series_id AND u.bucket = s.bucket"
        " AND (u.quantity, u.estimated, u.quarantined, u.coverage, u.reading_count, u.flags,"
        "  u.peak) IS DISTINCT FROM (s.quantity, s.estimated, s.quarantined, s.coverage,"
        "  s.reading_count, s.flags, nullif(s.peak, 'NaN'))",
        (now,),
    )
    # probe the primary key per staged row: a table that looks empty to the planner (just
    # truncated and analysed) would otherwise be scanned once per staged row, and the scan
    # sees the pages this very statement appends: quadratic time
    conn.execute("SET LOCAL enable_seqscan = off")
    inserted = conn.execute(
        "INSERT INTO usage_15m (series_id, bucket, quantity, estimated, quarantined,"
        "  coverage, reading_count, flags, peak, updated_at)"
        " SELECT series_id, bucket, quantity, estimated, quarantined, coverage, reading_count,"
        "  flags, nullif(peak, 'NaN'), %s FROM usage_stage s"
        " WHERE (s.coverage > 0 OR s.reading_count > 0 OR s.flags <> 0 OR s.quarantined <> 0"
        "  OR s.quantity <> 0) AND NOT EXISTS (SELECT 1 FROM usage_15m u"
        "  WHERE u.series_id = s.series_id AND u.bucket = s.bucket)",
        (now,),
    )
    conn.execute("RESET enable_seqscan")
    conn.execute("TRUNCATE usage_stage")
    return max(updated.rowcount, 0) + max(inserted.rowcount, 0)


def _write_daily(conn: Conn, rows: npt.NDArray[np.void], now: datetime) -> int:
    """Upsert packed days; days without any usage are written only over an existing row."""
    if rows.shape[0] == 0:
        return 0
    wire = np.empty(rows.shape[0], dtype=[
        ("n", ">i2"), ("l_sid", ">i4"), ("sid", ">i8"), ("l_day", ">i4"), ("day", ">i8"),
        ("l_q", ">i4"), ("q", ">f8", (96,)), ("l_e", ">i4"), ("e", ">f8", (96,)),
        ("l_rc", ">i4"), ("rc", ">i4", (96,)), ("l_empty", ">i4"), ("empty", "u1")])
    for f in ("n", "l_sid", "sid", "l_day", "day", "l_q", "q", "l_e", "e", "l_rc", "rc"):
        wire[f] = rows[f]
    wire["n"] = 6
    wire["l_empty"] = 1
    wire["empty"] = rows["empty"].astype(np.uint8)
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS usage_daily_stage (series_id bigint,"
        " day timestamptz, quantity bytea, estimated bytea, reading_count bytea, empty boolean)"
        " ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur, cur.copy(
        "COPY usage_daily_stage FROM STDIN (FORMAT BINARY)"
    ) as cp:
        cp.write(COPY_HEADER + wire.tobytes() + b"\xff\xff")
    cur_ins = conn.execute(
        "INSERT INTO usage_15m_daily AS t (series_id, day, quantity, estimated,"
        "  reading_count, updated_at)"
        " SELECT s.series_id, s.day, s.quantity, s.estimated, s.reading_count, %s"
        " FROM usage_daily_stage s WHERE NOT s.empty OR EXISTS (SELECT 1 FROM usage_15m_daily y"
        "  WHERE y.series_id = s.series_id AND y.day = s.day)"
        " ON CONFLICT (series_id, day) DO UPDATE SET quantity = excluded.quantity,"
        "  estimated = excluded.estimated, reading_count = excluded.reading_count,"
        "  updated_at = excluded.updated_at"
        " WHERE (t.quantity, t.estimated, t.reading_count)"
        "  IS DISTINCT FROM (excluded.quantity, excluded.estimated, excluded.reading_count)",
        (now,),
    )
    conn.execute("TRUNCATE usage_daily_stage")
    return max(cur_ins.rowcount, 0)
