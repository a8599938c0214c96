"""Benchmark: analytics over a month of 15-minute usage of 10,000 meters, and a customer's
dashboard with 10,000 customers in the database, each beside a naive baseline.

    python3 dev.py bench analytics [--customers 10000] [--dashboards 300]
        [--setup-only | --reuse-db NAME [--drop]]

Setup (not timed) is bench/close.py's: a fresh database, N customers with one meter each
(90 % Europe/Amsterdam), a TOU plan, March 2026 of 15-minute usage bulk-loaded into
``usage_15m`` and packed into ``usage_15m_daily``.

The setup also fills the fleet rollup ``usage_fleet_15m`` the way the usage refresh and the
backfill do (each batch staged, its deltas applied before it is written). It takes minutes:
``--setup-only`` builds the database and keeps it (its name is printed), ``--reuse-db NAME``
times an existing one (``--drop`` drops it afterwards), so only the timed part needs the
machine-wide benchmark lock:

    python3 bench/analytics.py --setup-only
    flock /work/bench.lock python3 bench/analytics.py --reuse-db tally_bench_analytics_xxx --drop

1. Fleet: daily usage (measured/estimated) of every meter in March, in Europe/Amsterdam —
   from the fleet rollup (``load_fleet_grid`` + ``timeline``: one row per quarter hour),
   beside two baselines measured in the same run, all checked equal: the packed per-meter
   path (``load_grid_pooled``: each day's packed vectors of all meters concatenated by the
   server and summed by numpy, two connections each taking half the meters; what fleet
   queries used before the rollup) and the plain SQL a naive implementation would write
   (``date_trunc`` + ``GROUP BY`` over ``usage_15m``).
2. Dashboard: ``customer_dashboard`` (the period so far per day, last period's same days,
   running charge and forecast priced by the billing core) for random customers on 20 March,
   p50/p99 — vs the same dashboard built from the existing per-series usage API
   (``usage_for_series``: SQL aggregation per call, 15-minute history for the forecast).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import psycopg_pool

sys.path.insert(0, str(Path(__file__).resolve().parent))

from close import setup, with_db

from collector.analytics import timeline
from collector.analytics.dashboard import customer_dashboard
from collector.analytics.forecasting import (
    CustomerContext,
    current_period,
    forecast_from_context,
)
from collector.analytics.loading import load_fleet_grid, load_grid_pooled
from collector.billing.pricing import parse_plan_document
from collector.billing.segments import build_segments
from collector.storage import analytics_store, billing_store
from collector.storage.billing_usage_store import series_info
from collector.storage.migrate import migrate
from collector.storage.usage_queries import usage_for_series

TZ = "Europe/Amsterdam"
START = datetime(2026, 2, 28, 23, tzinfo=UTC)  # 1 March 00:00 local
END = datetime(2026, 3, 31, 22, tzinfo=UTC)  # 1 April 00:00 local
NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


def fleet(pool: psycopg_pool.ConnectionPool[Any], parts: int) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    with pool.connection() as conn:
        found = analytics_store.scope_series(conn, "fleet", None, START, END)
    grid = load_grid_pooled(pool, found.windows, START, END, parts=parts)
    tl = timeline(grid, "1d", TZ)
    return time.perf_counter() - t0, tl.quantity


def fleet_rollup(conn: psycopg.Connection[Any]) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    found = analytics_store.scope_series(conn, "fleet", None, START, END)
    grid = load_fleet_grid(conn, found.unit, START, END)
    tl = timeline(grid, "1d", TZ)
    conn.rollback()
    return time.perf_counter() - t0, tl.quantity


def fleet_naive(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    rows = conn.execute(
        "SELECT date_trunc('day', bucket, %s) AS d, sum(quantity), sum(estimated)"
        " FROM usage_15m WHERE bucket >= %s AND bucket < %s GROUP BY 1 ORDER BY 1",
        (TZ, START, END),
    ).fetchall()
    return time.perf_counter() - t0, np.asarray([float(r[1]) for r in rows])


def dashboard_naive(conn: psycopg.Connection[tuple[object, ...]], cid: int) -> None:
    """The same dashboard from the per-series usage API (SQL aggregation per call: days of
    the period, last period's days, 15-minute history for the forecast), same pricing."""
    customer = billing_store.get_customer(conn, cid)
    tz = customer.spec.time_zone
    period = current_period(NOW, tz, 1)
    subs = billing_store.subscriptions_overlapping(conn, [cid], period.start, period.end)
    segments = build_segments({cid: period}, subs)
    plans = {
        v.plan_version_id: parse_plan_document(v.document)
        for v in billing_store.plan_versions(conn, sorted({x.plan_version_id for x in segments}))
    }
    sids = sorted({x.series_id for x in segments})
    units = {k: v[3] for k, v in series_info(conn, sids).items()}
    usage_for_series(conn, sids, period.start, NOW, resolution="1d", tz=tz)
    prev_start = period.start - (NOW - period.start)
    usage_for_series(conn, sids, prev_start, period.start, resolution="1d", tz=tz)
    h0 = NOW - timedelta(days=56)
    hist = usage_for_series(conn, sids, h0, NOW, resolution="15m", tz=tz)
    t0, t1 = int(hist.starts[0]), int(NOW.timestamp()) // 900 * 900
    ctx = CustomerContext(
        customer, period, segments, plans, units, np.asarray(sids, dtype=np.int64),
        hist.quantity[:, : (t1 - t0) // 900], hist.estimated[:, : (t1 - t0) // 900], t0,
        datetime.fromtimestamp(t1, UTC),
    )
    forecast_from_context(ctx)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--dashboards", type=int, default=300)
    ap.add_argument("--baseline-dashboards", type=int, default=50)
    ap.add_argument("--setup-only", action="store_true",
                    help="build the database, keep it and print its name; time nothing")
    ap.add_argument("--reuse-db", metavar="NAME", help="time a database --setup-only built")
    ap.add_argument("--drop", action="store_true", help="with --reuse-db: drop it afterwards")
    ap.add_argument("--fleet-only", action="store_true", help="time the fleet month only")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = ap.parse_args()
    name = args.reuse_db or f"tally_bench_analytics_{uuid.uuid4().hex[:8]}"
    url = with_db(args.database_url, name)
    drop = args.drop if args.reuse_db else True  # a setup that fails leaves nothing behind
    try:
        if args.reuse_db is None:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            migrate(url)
            t0 = time.perf_counter()
            setup(url, args.customers, np.random.default_rng(1), fleet=True)
            print(f"setup: {args.customers} customers/meters in {time.perf_counter() - t0:.1f} s")
            if args.setup_only:
                drop = False
                print(f"kept database {name}")
                return 0
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM usage_15m WHERE bucket >= %s AND bucket < %s", (START, END)
            ).fetchone()
            conn.rollback()
        rows = int(row[0]) if row else 0
        meters = args.customers
        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url, min_size=2, max_size=2, open=True
        )
        with psycopg.connect(url) as conn:
            meters = len(analytics_store.scope_series(conn, "fleet", None, START, END).windows)
            conn.rollback()
            fleet_rollup(conn)  # warm the cache for all three
            fleet(pool, 1)
            fleet_naive(conn)
            rolled = [fleet_rollup(conn) for _ in range(5)]
            single = [fleet(pool, 1) for _ in range(3)]
            packed = [fleet(pool, 2) for _ in range(3)]
            naive = [fleet_naive(conn) for _ in range(3)]
            q_roll, q_packed, q_naive = rolled[0][1], packed[0][1], naive[0][1]
            for other in (q_packed, q_naive):
                if q_roll.shape != other.shape or not np.allclose(q_roll, other, rtol=1e-9):
                    raise SystemExit("fleet totals differ between the ways")
            f_roll = min(t for t, _ in rolled)
            f_packed = min(t for t, _ in packed)
            f_naive = min(t for t, _ in naive)
            f_single = min(t for t, _ in single)
            print(f"fleet month, daily in {TZ}, from the fleet rollup: {f_roll * 1000:.1f} ms"
                  f" (best of 5; {meters} meters, {rows:,} intervals, {q_roll.shape[0]} days)")
            print(f"  baseline, packed per-meter days on 2 connections: {f_packed * 1000:.0f} ms"
                  f" ({f_packed / f_roll:.0f}x); on one connection: {f_single * 1000:.0f} ms")
            print(f"  naive SQL GROUP BY over usage_15m: {f_naive * 1000:.0f} ms"
                  f" ({f_naive / f_roll:.0f}x)")
            if args.fleet_only:
                print(f"RESULT analytics fleet_month_ms={f_roll * 1000:.1f}"
                      f" (packed {f_packed * 1000:.0f}, naive {f_naive * 1000:.0f})"
                      f" meters={meters}")
                conn.rollback()
                pool.close()
                return 0
            ids = [r[0] for r in conn.execute("SELECT customer_id FROM customers")]
            rng = np.random.default_rng(2)
            picks = rng.choice(ids, size=min(args.dashboards, len(ids)), replace=False)
            for cid in picks[:5]:
                customer_dashboard(conn, int(cid), NOW)
            lat = []
            for cid in picks:
                t = time.perf_counter()
                customer_dashboard(conn, int(cid), NOW)
                lat.append(time.perf_counter() - t)
            base = []
            for cid in picks[: args.baseline_dashboards]:
                t = time.perf_counter()
                dashboard_naive(conn, int(cid))
                base.append(time.perf_counter() - t)
            conn.rollback()
        pool.close()
        p50, p99 = np.percentile(lat, 50) * 1000, np.percentile(lat, 99) * 1000
        b50, b99 = np.percentile(base, 50) * 1000, np.percentile(base, 99) * 1000
        print(f"customer dashboard ({len(lat)} customers of {len(ids)}): p50 {p50:.1f} ms,"
              f" p99 {p99:.1f} ms")
        print(f"naive (per-series usage API, {len(base)} customers): p50 {b50:.1f} ms,"
              f" p99 {b99:.1f} ms")
        print(f"RESULT analytics fleet_month_ms={f_roll * 1000:.1f} (packed {f_packed * 1000:.0f},"
              f" naive {f_naive * 1000:.0f}) dashboard_p99_ms={p99:.1f} (naive {b99:.1f})"
              f" meters={meters}")
    finally:
        if drop:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
