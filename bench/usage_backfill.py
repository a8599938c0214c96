"""Benchmark: backfilling usage from raw readings, end to end in PostgreSQL.

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
     python3 dev.py bench usage_backfill [--series 200] [--days 7] [--interval 60]

Creates a scratch database and loads ``series × days`` of readings every ``--interval`` seconds,
in arrival order (time-major, series interleaved, as ingest writes them), with binary COPY.

Baseline (same run, same data): the incremental refresh path, i.e. one ``usage_dirty`` row per
series over the whole range, drained with ``refresh_usage`` (index lookups per series, a
server-side sorted load, SQL daily packing). Figure: ``backfill_usage`` over the same range
after emptying ``usage_15m``, ``usage_15m_daily`` and the fleet rollup. Check: both leave
identical tables, and the fleet rollup equals the ``GROUP BY`` of ``usage_15m``. The time the
backfill spends keeping the fleet rollup (``apply_stage_deltas``) is printed beside it.

The final ``RESULT`` line: figure and baseline in readings/s, ratio = figure / baseline.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from collector.storage import usage_backfill
from collector.storage.copy_binary import encode_readings_copy
from collector.storage.migrate import migrate
from collector.storage.usage_backfill import backfill_usage
from collector.storage.usage_fleet import apply_stage_deltas
from collector.storage.usage_store import refresh_usage

T0_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
NOW = datetime(2026, 4, 2, tzinfo=UTC)
Conn = psycopg.Connection[Any]


def _tables(conn: Conn) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    u = conn.execute("SELECT series_id, bucket, quantity, estimated, coverage, reading_count,"
                     " flags FROM usage_15m ORDER BY 1, 2").fetchall()
    d = conn.execute("SELECT series_id, day, quantity, estimated, reading_count"
                     " FROM usage_15m_daily ORDER BY 1, 2").fetchall()
    return u, d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--interval", type=int, default=60, help="seconds between readings")
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
            per = args.days * 86400 // args.interval
            rng = np.random.default_rng(1)
            steps = np.arange(per, dtype=np.int64)
            ts = np.repeat(T0_MS + steps * args.interval * 1000, len(sids))  # time-major
            sid = np.tile(np.asarray(sids, dtype=np.int64), per)
            val = np.cumsum(rng.uniform(0, 0.01, (per, len(sids))), axis=0).ravel()
            n = int(ts.shape[0])
            t = time.perf_counter()
            with conn.cursor() as cur, cur.copy(
                "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.write(encode_readings_copy(sid, ts, val))
            conn.execute("VACUUM ANALYZE readings")
            print(f"loaded {n:,} readings ({len(sids)} series × {per:,}) in"
                  f" {time.perf_counter() - t:.1f} s")
            lo = datetime.fromtimestamp(T0_MS / 1000, UTC)
            hi = datetime.fromtimestamp((T0_MS + (per - 1) * args.interval * 1000) / 1000, UTC)

            conn.execute("INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
                         " SELECT s, %s, %s FROM unnest(%s::bigint[]) s", (lo, hi, sids))
            t = time.perf_counter()
            while refresh_usage(conn, NOW, limit=5000).dirty_rows:
                pass
            base_s = time.perf_counter() - t
            print(f"baseline refresh_usage drain: {base_s:.2f} s = {n / base_s:,.0f} readings/s")
            expected = _tables(conn)
            conn.execute("TRUNCATE usage_15m, usage_15m_daily, usage_fleet_15m")
            conn.execute("VACUUM ANALYZE usage_15m, usage_15m_daily")

            fleet_s = [0.0]

            def timed(c: Conn) -> int:
                t = time.perf_counter()
                try:
                    return apply_stage_deltas(c)
                finally:
                    fleet_s[0] += time.perf_counter() - t

            usage_backfill.apply_stage_deltas = timed  # type: ignore[assignment]
            t = time.perf_counter()
            rep = backfill_usage(conn, NOW, lo, hi)
            fig_s = time.perf_counter() - t
            print(f"backfill_usage: {fig_s:.2f} s = {n / fig_s:,.0f} readings/s"
                  f" ({rep.readings_loaded:,} readings, {rep.buckets_written:,} buckets,"
                  f" {rep.days_packed:,} days packed; of which fleet rollup {fleet_s[0]:.2f} s)")
            fleet_ok = conn.execute(
                "SELECT count(*) FROM (SELECT r.unit, u.bucket, sum(u.quantity) AS q"
                " FROM usage_15m u JOIN series r USING (series_id) GROUP BY 1, 2) g"
                " FULL JOIN usage_fleet_15m f ON f.unit = g.unit AND f.bucket = g.bucket"
                " WHERE abs(coalesce(g.q, 0) - coalesce(f.quantity, 0)) > 1e-9"
            ).fetchone() == (0,)
            print(f"check: fleet rollup == GROUP BY of usage_15m: {fleet_ok}")
            same = _tables(conn) == expected and fleet_ok
            print(f"check: backfill tables == refresh tables: {same}"
                  f" ({len(expected[0]):,} buckets, {len(expected[1]):,} days)")
            fig, base = n / fig_s, n / base_s
            print(f"RESULT name=usage_backfill figure={fig:.0f} readings/s baseline={base:.0f}"
                  f" readings/s ratio={fig / base:.1f}x")
            if not same:
                raise SystemExit(1)
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
