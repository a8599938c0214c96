"""Benchmark of refresh_usage against PostgreSQL: backfill and steady-state refresh.

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
     .venv/bin/python -m bench.usage_refresh_bench [--series 200] [--days 31]
Creates a scratch database, loads ``series × days × 96`` readings (binary COPY), queues them in
usage_dirty and times refresh_usage until the queue is empty; then appends one new reading per
series (one ingest flush) and times the incremental refresh.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg

from collector.storage.copy_binary import encode_readings_copy
from collector.storage.migrate import migrate
from collector.storage.usage_queries import load_usage_matrix
from collector.storage.usage_store import refresh_usage

T0_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z


def _load(conn: psycopg.Connection[object], sids: list[int], per: int, first: int) -> int:
    n = len(sids) * per
    sid = np.repeat(np.asarray(sids, dtype=np.int64), per)
    ts = np.tile(T0_MS + (first + np.arange(per, dtype=np.int64)) * 900_000, len(sids))
    val = np.tile((first + np.arange(per)) * 0.25, len(sids))
    with conn.transaction():
        with conn.cursor() as cur, cur.copy(
            "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            cp.write(encode_readings_copy(sid, ts, val))
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to) SELECT s,"
            " to_timestamp(%s::float8 / 1000), to_timestamp(%s::float8 / 1000)"
            " FROM unnest(%s::bigint[]) s",
            (int(ts[0]), int(ts[per - 1]), sids),
        )
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--days", type=int, default=31)
    args = ap.parse_args()
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT tally_ensure_reading_partitions('2026-02-01', 3)")
            sids = [int(r[0]) for r in conn.execute(
                "INSERT INTO series (device_id, meter, metric, unit, kind)"
                " SELECT 'dev-' || g, 'main', 'energy', 'kWh', 'cumulative'"
                " FROM generate_series(1, %s) g RETURNING series_id", (args.series,)).fetchall()]
            per = args.days * 96
            n = _load(conn, sids, per, 0)
            now = datetime(2026, 4, 2, tzinfo=UTC)
            t = time.perf_counter()
            buckets = 0
            while True:
                rep = refresh_usage(conn, now, limit=500)
                buckets += rep.buckets_written
                if rep.dirty_rows == 0:
                    break
            dt = time.perf_counter() - t
            print(f"backfill: {n:,} readings → {buckets:,} buckets in {dt:.2f} s "
                  f"= {n / dt:,.0f} readings/s")
            conn.execute("ANALYZE")  # as autovacuum would after a bulk load
            _load(conn, sids, 1, per)
            t = time.perf_counter()
            rep = refresh_usage(conn, now)
            dt = time.perf_counter() - t
            print(f"incremental: {len(sids)} series × 1 new reading: {dt * 1000:.0f} ms "
                  f"({rep.buckets_written} buckets written)")
            t = time.perf_counter()
            m = load_usage_matrix(conn, sids, datetime(2026, 3, 1, tzinfo=UTC),
                                  datetime(2026, 4, 1, tzinfo=UTC))
            dt = time.perf_counter() - t
            print(f"load_usage_matrix: {m.quantity.size:,} cells in {dt:.2f} s "
                  f"= {m.quantity.size / dt:,.0f} rows/s (total {m.quantity.sum():.1f})")
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
