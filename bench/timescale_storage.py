"""Benchmark: bytes per reading of a month of 15-minute readings, TimescaleDB compressed beside
plain PostgreSQL, with compressed reads and late data checked.

Run: python3 dev.py bench timescale_storage --timescale-url postgresql://…:55432/postgres \\
     --plain-url postgresql://…:55433/postgres [--series 500] [--chunk-interval '1 day']

The data are those of ``bench/archive.py``: a month of cumulative energy registers read every
15 minutes (kWh with 3 decimals, a daily profile, each meter at its own level, 0-2 s of
timestamp jitter; ``--jitter-s 0`` puts every reading on the quarter hour), bulk-loaded in
arrival order (time-major) into a fresh database on each server, schema from ``migrate``
(TimescaleDB flavour on the first, plain on the second). The compressed chunks' bytes per
reading are printed per column as well.

Figure: bytes per reading on TimescaleDB after ``compress_chunk`` of every chunk (as the
compression policy leaves a month: ``segmentby series_id``, ``orderby ts``), from
``hypertable_size``. Baselines in the same run: the same month on TimescaleDB before
compression, and on plain PostgreSQL (the month's partition, table + index).

``--chunk-interval`` sets the chunk span of ``readings`` before loading (default: as the
migrations leave it, 30 days since ``0005``; ``'1 day'`` is the layout before it).

Checks: per series, every (time, value) identical before and after compression (a digest);
one day of one series read back identically; a late reading inserted into a compressed day is
read back in its place (and the chunk stays compressed, or partially so). Timed beside them:
one day of each of 50 series read from the compressed month, one query per series (best of 5).
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg import sql

from collector.storage.copy_binary import encode_readings_copy
from collector.storage.migrate import migrate

JAN = datetime(2026, 1, 1, tzinfo=UTC)
Conn = psycopg.Connection[Any]
CHECKSUM = ("SELECT series_id, count(*), md5(string_agg(ts::text || '=' || value::text, ','"
            " ORDER BY ts)) FROM readings GROUP BY series_id ORDER BY series_id")


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _month(series: int, jitter_s: int = 2) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Times (ms, time-major × series) and values of a realistic month (bench/archive.py);
    each timestamp late by 0..``jitter_s`` whole seconds (0: exactly on the quarter hour)."""
    rng = np.random.default_rng(11)
    interval = 900
    per = 31 * 86400 // interval
    hours = (np.arange(per) * interval % 86400) / 3600
    profile = (0.05 + 0.2 * np.exp(-((hours - 19) / 3) ** 2)
               + 0.1 * np.exp(-((hours - 8) / 2) ** 2))
    inc = np.round(profile[None, :] * rng.uniform(0.5, 1.5, (series, per)), 3)
    vals = (np.cumsum(inc, axis=1) + rng.uniform(1000, 50000, (series, 1))).round(3)
    ts = int(JAN.timestamp() * 1000) + np.arange(per, dtype=np.int64) * interval * 1000
    ts_all = (ts[:, None] + rng.integers(0, jitter_s + 1, (per, series)) * 1000).ravel()
    return ts_all, vals.T.ravel()


def _load(conn: Conn, series: int, jitter_s: int) -> tuple[list[int], int]:
    sids = [int(r[0]) for r in conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " SELECT 'dev-' || g, 'main', 'energy', 'kWh', 'cumulative'"
        " FROM generate_series(1, %s) g RETURNING series_id", (series,)).fetchall()]
    ts, vals = _month(series, jitter_s)
    sid = np.tile(np.asarray(sids, dtype=np.int64), ts.shape[0] // series)
    t = time.perf_counter()
    with conn.cursor() as cur, cur.copy(
        "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
    ) as cp:
        cp.write(encode_readings_copy(sid, ts, vals))
    print(f"  loaded {ts.shape[0]:,} readings in {time.perf_counter() - t:.1f} s")
    conn.execute("VACUUM ANALYZE readings")
    return sids, int(ts.shape[0])


def _day(conn: Conn, sid: int, day: datetime) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT ts, value FROM readings WHERE series_id = %s AND ts >= %s AND ts < %s"
        " ORDER BY ts", (sid, day, day + timedelta(days=1))).fetchall()


def _read_days(conn: Conn, sids: list[int], day: datetime) -> float:
    """Best of 5: milliseconds to read one day of each series, one query per series."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for sid in sids:
            _day(conn, sid, day)
        best = min(best, time.perf_counter() - t)
    return best * 1000


def _columns(conn: Conn, n: int) -> str:
    """Bytes per reading of each column of the compressed chunks (``pg_column_size``)."""
    tables = conn.execute(
        "SELECT format('%I.%I', c.schema_name, c.table_name) FROM _timescaledb_catalog.chunk c"
        " WHERE c.id IN (SELECT compressed_chunk_id FROM _timescaledb_catalog.chunk"
        "  WHERE compressed_chunk_id IS NOT NULL)").fetchall()
    totals: dict[str, int] = {}
    for (table,) in tables:
        schema, name = table.split(".", 1)
        cols = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum", (table,)).fetchall()]
        for col in cols:
            row = conn.execute(
                sql.SQL("SELECT coalesce(sum(pg_column_size({})), 0) FROM {}.{}").format(
                    sql.Identifier(col), sql.Identifier(schema.strip('"')),
                    sql.Identifier(name.strip('"')))).fetchone()
            totals[col] = totals.get(col, 0) + int(row[0] if row else 0)
    return ", ".join(f"{c} {b / n:.2f}" for c, b in totals.items())


def _timescale(url: str, series: int, interval: str | None,
               jitter_s: int) -> tuple[float, float, bool]:
    """Bytes per reading before and after compression, and whether every check held."""
    with psycopg.connect(url, autocommit=True) as conn:
        if interval:
            conn.execute("SELECT set_chunk_time_interval('readings', %s::interval)", (interval,))
        sids, n = _load(conn, series, jitter_s)
        before = conn.execute("SELECT hypertable_size('readings')").fetchone()
        sums = conn.execute(CHECKSUM).fetchall()
        day = JAN + timedelta(days=9)
        one_day = _day(conn, sids[7], day)
        t = time.perf_counter()
        chunks = conn.execute(
            "SELECT count(compress_chunk(c)) FROM show_chunks('readings') c").fetchone()
        dt = time.perf_counter() - t
        conn.execute("VACUUM ANALYZE readings")
        after = conn.execute("SELECT hypertable_size('readings')").fetchone()
        assert before is not None
        assert after is not None
        assert chunks is not None
        print(f"  compressed {chunks[0]} chunks in {dt:.1f} s")
        print(f"  compressed columns, bytes per reading: {_columns(conn, n)}")
        same = conn.execute(CHECKSUM).fetchall() == sums
        t = time.perf_counter()
        same_day = _day(conn, sids[7], day) == one_day
        read_ms = (time.perf_counter() - t) * 1000
        reads_ms = _read_days(conn, sids[:50], day + timedelta(days=3))
        late = day + timedelta(hours=5, minutes=7)
        conn.execute("INSERT INTO readings (series_id, ts, value) VALUES (%s, %s, 42.0)",
                     (sids[7], late))
        back = _day(conn, sids[7], day)
        late_ok = (len(back) == len(one_day) + 1 and (late, 42.0) in back
                   and back == sorted([*one_day, (late, 42.0)]))
        status = conn.execute(
            "SELECT is_compressed FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'readings' AND range_start <= %s AND range_end > %s",
            (late, late)).fetchone()
        print(f"  checks: checksums equal {same}; one day read back equal {same_day}"
              f" ({read_ms:.1f} ms); late reading in a compressed day read back {late_ok}"
              f" (chunk still compressed: {status[0] if status else None})")
        print(f"  reads: one day of {min(50, len(sids))} series from the compressed month,"
              f" one query each: {reads_ms:.1f} ms (best of 5)")
        return before[0] / n, after[0] / n, same and same_day and late_ok


def _plain(url: str, series: int, jitter_s: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT tally_ensure_reading_partitions('2026-01-01', 2)")
        _, n = _load(conn, series, jitter_s)
        size = conn.execute("SELECT pg_total_relation_size('readings_p202601')").fetchone()
        assert size is not None
        return float(size[0]) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timescale-url", required=True, help="a server with TimescaleDB preloaded")
    ap.add_argument("--plain-url", required=True, help="a plain PostgreSQL server")
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument("--chunk-interval", default=None,
                    help="TimescaleDB: chunk span of readings, e.g. '1 day' (default: migrations')")
    ap.add_argument("--jitter-s", type=int, default=2,
                    help="each reading up to this many whole seconds late (0: on the quarter"
                         " hour, as a meter that stamps its register period's end)")
    args = ap.parse_args()
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {}
    for flavour, server in (("timescale", args.timescale_url), ("plain", args.plain_url)):
        with psycopg.connect(server, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        url = _with_db(server, name)
        try:
            migrate(url, use_timescale=flavour == "timescale")
            print(f"{flavour}:")
            results[flavour] = (_timescale(url, args.series, args.chunk_interval, args.jitter_s)
                                if flavour == "timescale"
                                else _plain(url, args.series, args.jitter_s))
        finally:
            with psycopg.connect(server, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    raw, packed, ok = results["timescale"]
    plain = results["plain"]
    print(f"bytes/reading: TimescaleDB compressed {packed:.2f}, uncompressed {raw:.1f};"
          f" plain PostgreSQL {plain:.1f}")
    print(f"RESULT name=timescale_storage figure={packed:.2f} bytes/reading"
          f" baseline={plain:.1f} bytes/reading ratio={plain / packed:.1f}x")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
