"""Benchmark of load_usage_matrix: a billing run's read of a month of 15-minute usage.

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
     .venv/bin/python bench/usage_matrix_bench.py [--series 10000] [--days 31] [--sample 500]

Fills ``usage_15m_daily`` of a scratch database with ``series × days`` packed rows (96 quarter
hours each, i.e. series × days × 96 interval values) and times loading them all into numpy with
``load_usage_matrix`` (best of ``--repeat``).

Baseline (same run, same database): the naive read of the same usage from ``usage_15m``, one
row per quarter hour: ``SELECT series_id, bucket, quantity FROM usage_15m WHERE … ORDER BY
series_id, bucket``, ``fetchall()`` into Python tuples, then into a numpy matrix. For that,
``usage_15m`` is filled for ``--sample`` of the series (with varying quantities; their
``usage_15m_daily`` rows are packed from those very rows, as refresh_usage keeps them) and the
baseline reads those series; the check compares both matrices on the sample. The other series
carry a constant 0.25 per quarter hour (checked through the total).

The final ``RESULT`` line: figure = load_usage_matrix interval values/s (all series),
baseline = naive interval values/s (sample), ratio = figure / baseline.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from collector.storage.migrate import migrate
from collector.storage.usage_queries import load_usage_matrix

START = datetime(2026, 3, 1, tzinfo=UTC)


def fill(conn: psycopg.Connection[Any], series: int, sample: int, days: int) -> None:
    """usage_15m for series 1..sample, usage_15m_daily for 1..series (not timed)."""
    conn.execute(
        "INSERT INTO usage_15m (series_id, bucket, quantity, estimated, coverage, reading_count)"
        " SELECT s, %s::timestamptz + k * interval '15 minutes',"
        "  ((s * 7919 + k * 104729) %% 1000) / 1000.0, 0, 1, 1"
        " FROM generate_series(1, %s::int) s, generate_series(0, %s::int) k",
        (START, sample, days * 96 - 1),
    )
    conn.execute(
        "INSERT INTO usage_15m_daily (series_id, day, quantity, estimated, reading_count)"
        " SELECT series_id, date_trunc('day', bucket, 'UTC'),"
        "  string_agg(float8send(quantity), ''::bytea ORDER BY bucket),"
        "  string_agg(float8send(estimated), ''::bytea ORDER BY bucket),"
        "  string_agg(int4send(reading_count), ''::bytea ORDER BY bucket)"
        " FROM usage_15m GROUP BY 1, 2"
    )
    conn.execute(
        "INSERT INTO usage_15m_daily (series_id, day, quantity, estimated, reading_count)"
        " SELECT s, %s::timestamptz + d * interval '24 hours',"
        "  q.b, e.b, rc.b FROM generate_series(%s::int, %s::int) s, generate_series(0, %s::int) d,"
        " (SELECT string_agg(float8send(0.25), ''::bytea) AS b"
        "   FROM generate_series(1, 96)) q,"
        " (SELECT string_agg(float8send(0), ''::bytea) AS b FROM generate_series(1, 96)) e,"
        " (SELECT string_agg(int4send(1), ''::bytea) AS b FROM generate_series(1, 96)) rc",
        (START, sample + 1, series, days - 1),
    )
    conn.execute("VACUUM ANALYZE usage_15m")
    conn.execute("VACUUM ANALYZE usage_15m_daily")


def naive_matrix(
    conn: psycopg.Connection[Any], sids: list[int], start: datetime, end: datetime
) -> npt.NDArray[np.float64]:
    """The row-per-quarter-hour read: fetchall, then a Python loop into a dense matrix."""
    rows = conn.execute(
        "SELECT series_id, bucket, quantity FROM usage_15m WHERE series_id = ANY(%s)"
        " AND bucket >= %s AND bucket < %s ORDER BY series_id, bucket",
        (sids, start, end),
    ).fetchall()
    s0 = start.timestamp()
    nb = round((end.timestamp() - s0) / 900)
    row_of = {s: i for i, s in enumerate(sorted(sids))}
    out = np.zeros((len(sids), nb))
    for sid, bucket, q in rows:
        out[row_of[sid], int((bucket.timestamp() - s0) // 900)] = q
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--sample", type=int, default=500, help="series the baseline reads")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each; the best is reported")
    args = ap.parse_args()
    sample = min(args.sample, args.series)
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    end = START + timedelta(days=args.days)
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            t = time.perf_counter()
            fill(conn, args.series, sample, args.days)
            print(f"fill: {time.perf_counter() - t:.1f} s ({args.series:,} series × {args.days}"
                  f" days in usage_15m_daily; {sample:,} series × {args.days * 96} rows in"
                  f" usage_15m)")
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                m = load_usage_matrix(conn, range(1, args.series + 1), START, end)
                best = min(best, time.perf_counter() - t)
            rate = m.quantity.size / best
            rest = m.quantity[sample:]
            total_ok = bool(np.isclose(rest.sum(), rest.size * 0.25, rtol=1e-9))
            print(f"load_usage_matrix: {m.quantity.size:,} interval values of {args.series:,}"
                  f" series in {best:.2f} s = {rate / 1e6:.2f} M/s (constant part total"
                  f" {rest.sum():,.0f}, expected {rest.size * 0.25:,.0f}: {total_ok})")
            sids = list(range(1, sample + 1))
            base_best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                naive = naive_matrix(conn, sids, START, end)
                base_best = min(base_best, time.perf_counter() - t)
            base_rate = naive.size / base_best
            same = bool(np.array_equal(naive, m.quantity[:sample]))
            print(f"naive usage_15m read: {naive.size:,} interval values of {sample:,} series"
                  f" in {base_best:.2f} s = {base_rate / 1e6:.2f} M/s")
            print(f"check: naive matrix == load_usage_matrix on the sample: {same}")
            print(f"RESULT name=usage_matrix figure={rate:.0f} values/s baseline={base_rate:.0f}"
                  f" values/s ratio={rate / base_rate:.1f}x")
            if not (same and total_ok):
                raise SystemExit(1)
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
