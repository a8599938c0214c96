"""Benchmark of load_usage_matrix: a billing run's read of a month of 15-minute usage.

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
     .venv/bin/python -m bench.usage_matrix_bench [--series 10000] [--days 31]
Fills usage_15m_daily of a scratch database with ``series × days`` packed rows (96 quarter
hours each, i.e. series × days × 96 interval values) and times one load into numpy.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from collector.storage.migrate import migrate
from collector.storage.usage_queries import load_usage_matrix


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=31)
    args = ap.parse_args()
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    start = datetime(2026, 3, 1, tzinfo=UTC)
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            t = time.perf_counter()
            conn.execute(
                "INSERT INTO usage_15m_daily (series_id, day, quantity, estimated, reading_count)"
                " SELECT s, %s::timestamptz + d * interval '24 hours',"
                "  q.b, e.b, rc.b FROM generate_series(1, %s) s, generate_series(0, %s) d,"
                " (SELECT string_agg(float8send(0.25), ''::bytea) AS b"
                "   FROM generate_series(1, 96)) q,"
                " (SELECT string_agg(float8send(0), ''::bytea) AS b FROM generate_series(1, 96)) e,"
                " (SELECT string_agg(int4send(1), ''::bytea) AS b FROM generate_series(1, 96)) rc",
                (start, args.series, args.days - 1),
            )
            conn.execute("VACUUM ANALYZE usage_15m_daily")
            print(f"fill: {time.perf_counter() - t:.1f} s")
            for _ in range(2):
                t = time.perf_counter()
                m = load_usage_matrix(conn, range(1, args.series + 1), start,
                                      start + timedelta(days=args.days))
                dt = time.perf_counter() - t
                print(f"load_usage_matrix: {m.quantity.size:,} interval values of "
                      f"{args.series} series in {dt:.2f} s = {m.quantity.size / dt / 1e6:.1f} M/s "
                      f"(total {m.quantity.sum():,.0f} = expected {m.quantity.size * 0.25:,.0f})")
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
