"""Benchmark of refresh_usage against PostgreSQL: backfill and steady-state refresh.

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
     .venv/bin/python bench/usage_refresh_bench.py [--series 200] [--days 31] [--repeat 3]
     [--compress]

Creates a scratch database, loads ``series × days × 96`` readings (binary COPY), queues them in
usage_dirty and times refresh_usage until the queue is empty (backfill); then, ``--repeat``
times, appends one new reading per series (one ingest flush, queued in usage_dirty as the
ingest does) and times the incremental refresh (steady state; the best run is the figure).

The incremental figure is the usage refresh plus, on TimescaleDB, the refresh of the
continuous aggregates it queues (``refresh_rollups``, as ``refresh_usage`` runs it on an
autocommit connection); both parts are printed.

Baseline (same run, same data): the non-incremental alternative, recomputing every affected
series from *all* its readings whenever it gets new ones. It is run with the same code
(refresh_usage, i.e. the same binary COPY load, vectorised derivation, staged upsert and daily
packing), with each flush's dirty range widened to the series' whole history, so the ratio
isolates what the incremental windows save rather than comparing against a deliberately slow
implementation. Also timed ``--repeat`` times, each after a new reading per series.

``--compress`` (TimescaleDB only): after the backfill every ``readings`` chunk is compressed
(the month as the compression policy leaves it), so the steady state reads its neighbours from
compressed chunks. Then, on either flavour, one late reading per series inside day 10 of the
month (a compressed chunk with ``--compress``) is stored and refreshed (timed: ``late``).

Check: after the incremental refreshes, one full recompute of every series (not timed) must give
the same ``usage_15m`` quantities (within 1e-9), and the month's total must be exact.

Fleet rollup cost (same run): every refresh also keeps ``usage_fleet_15m``
(``collector.storage.usage_fleet.apply_stage_deltas``). The time spent in that step is summed
over the backfill and the incremental refreshes, and the incremental refresh is timed again
``--repeat`` times with the step switched off (the refresh as it was before the rollup; the
rollup is re-summed afterwards and checked equal to the ``GROUP BY`` of ``usage_15m``).

The final ``RESULT`` line: figure = incremental refresh series/s (steady state),
baseline = full-recompute series/s, ratio = figure / baseline.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from collector.storage import usage_store
from collector.storage.copy_binary import encode_readings_copy
from collector.storage.migrate import migrate
from collector.storage.usage_fleet import apply_stage_deltas, resum_fleet
from collector.storage.usage_queries import load_usage_matrix
from collector.storage.usage_store import refresh_usage

T0_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
Conn = psycopg.Connection[Any]


def _load(conn: Conn, sids: list[int], per: int, first: int, *, whole: bool = False) -> int:
    """Readings ``first .. first+per-1`` of every series (value 0.25 per quarter hour) and
    their usage_dirty rows (``whole``: the dirty range starts at the first reading)."""
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
            (T0_MS if whole else int(ts[0]), int(ts[per - 1]), sids),
        )
    return n


def _quantities(conn: Conn) -> np.ndarray:
    rows = conn.execute(
        "SELECT quantity FROM usage_15m ORDER BY series_id, bucket"
    ).fetchall()
    return np.asarray([r[0] for r in rows], dtype=np.float64)


def _drain(conn: Conn, now: datetime, limit: int) -> int:
    buckets = 0
    while True:
        rep = refresh_usage(conn, now, limit=limit)
        buckets += rep.buckets_written
        if rep.dirty_rows == 0:
            return buckets


class _FleetTimer:
    """Stands in for the refresh's fleet rollup step: times it, or skips it when off."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.on = True

    def __call__(self, conn: Conn) -> int:
        if not self.on:
            return 0
        t = time.perf_counter()
        try:
            return apply_stage_deltas(conn)
        finally:
            self.seconds += time.perf_counter() - t


def _fleet_equal(conn: Conn) -> bool:
    got = conn.execute(
        "SELECT count(*) FROM (SELECT r.unit, u.bucket, sum(u.quantity) AS q"
        " FROM usage_15m u JOIN series r USING (series_id) GROUP BY 1, 2) n"
        " FULL JOIN usage_fleet_15m f ON f.unit = n.unit AND f.bucket = n.bucket"
        " WHERE abs(coalesce(n.q, 0) - coalesce(f.quantity, 0)) > 1e-9"
    ).fetchone()
    return got == (0,)


def _compress(conn: Conn) -> None:
    row = conn.execute(
        "SELECT flavour FROM tally_schema_migrations WHERE version = 2").fetchone()
    if not row or row[0] != "timescale":
        raise SystemExit("--compress needs the TimescaleDB flavour")
    size = conn.execute("SELECT hypertable_size('readings')").fetchone()
    t = time.perf_counter()
    chunks = conn.execute(
        "SELECT count(compress_chunk(c, if_not_compressed => true))"
        " FROM show_chunks('readings') c").fetchone()
    dt = time.perf_counter() - t
    conn.execute("ANALYZE readings")
    after = conn.execute("SELECT hypertable_size('readings')").fetchone()
    assert size is not None
    assert chunks is not None
    assert after is not None
    print(f"compressed {chunks[0]} chunks in {dt:.1f} s: readings {size[0] / 1e6:.1f} MB"
          f" -> {after[0] / 1e6:.1f} MB")


def _late(conn: Conn, sids: list[int], now: datetime) -> float:
    """One reading per series half-way between two of day 10's readings (on the line between
    them, so usage is unchanged), queued and refreshed; returns the refresh's seconds."""
    slot = 9 * 96 + 40
    at_ms = T0_MS + slot * 900_000 + 450_000
    sid = np.asarray(sids, dtype=np.int64)
    with conn.transaction():
        with conn.cursor() as cur, cur.copy(
            "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            cp.write(encode_readings_copy(sid, np.full(len(sids), at_ms, dtype=np.int64),
                                          np.full(len(sids), (slot + 0.5) * 0.25)))
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to) SELECT s,"
            " to_timestamp(%s::float8 / 1000), to_timestamp(%s::float8 / 1000)"
            " FROM unnest(%s::bigint[]) s", (at_ms, at_ms, sids))
    t = time.perf_counter()
    rep = refresh_usage(conn, now)
    dt = time.perf_counter() - t
    assert rep.series == len(sids), rep
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--repeat", type=int, default=3, help="steady-state runs of each kind")
    ap.add_argument("--compress", action="store_true",
                    help="TimescaleDB: compress every readings chunk after the backfill")
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
            timer = _FleetTimer()
            usage_store.apply_stage_deltas = timer  # type: ignore[assignment]
            t = time.perf_counter()
            buckets = _drain(conn, now, 500)
            dt = time.perf_counter() - t
            print(f"backfill: {n:,} readings → {buckets:,} buckets in {dt:.2f} s "
                  f"= {n / dt:,.0f} readings/s (of which fleet rollup {timer.seconds:.2f} s,"
                  f" {timer.seconds / dt:.1%})")
            conn.execute("ANALYZE")  # as autovacuum would after a bulk load
            if args.compress:
                _compress(conn)
            nxt = per
            inc: list[float] = []
            bare: list[float] = []
            fleet_s: list[float] = []
            for k in range(2 * args.repeat):  # alternating: with the rollup step, without
                timer.on, timer.seconds = k % 2 == 0, 0.0
                _load(conn, sids, 1, nxt)
                nxt += 1
                t = time.perf_counter()
                rep = refresh_usage(conn, now)
                (inc if timer.on else bare).append(time.perf_counter() - t)
                if timer.on:
                    fleet_s.append(timer.seconds)
            timer.on = True
            resum_fleet(conn, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
            best_inc = min(inc)
            print(f"incremental: {len(sids)} series × 1 new reading: best {best_inc * 1000:.0f} ms"
                  f" of {args.repeat} ({rep.readings_loaded} readings loaded,"
                  f" {rep.buckets_written} buckets written in the last)")
            print(f"  fleet rollup step: median {np.median(fleet_s) * 1000:.1f} ms per refresh;"
                  f" the same refresh without it: best {min(bare) * 1000:.0f} ms of"
                  f" {args.repeat} (+{(best_inc - min(bare)) * 1000:.0f} ms,"
                  f" {best_inc / min(bare) - 1:+.0%})")

            late = _late(conn, sids, now)
            print(f"late: {len(sids)} series × 1 reading inside day 10: {late * 1000:.0f} ms")

            before = _quantities(conn)
            conn.execute(
                "INSERT INTO usage_dirty (series_id, ts_from, ts_to) SELECT s,"
                " to_timestamp(%s::float8 / 1000), to_timestamp(%s::float8 / 1000)"
                " FROM unnest(%s::bigint[]) s",
                (T0_MS, T0_MS + (nxt - 1) * 900_000, sids),
            )
            rewritten = _drain(conn, now, 5000)
            after = _quantities(conn)
            same = before.shape == after.shape and bool(
                np.allclose(before, after, rtol=1e-9, atol=1e-9)
            )
            print(f"check: full recompute == incremental usage_15m: {same}"
                  f" ({after.shape[0]:,} buckets; {rewritten} rows rewritten by float noise)")

            full = []
            for _ in range(args.repeat):
                _load(conn, sids, 1, nxt, whole=True)
                nxt += 1
                t = time.perf_counter()
                rep = refresh_usage(conn, now)
                full.append(time.perf_counter() - t)
            best_full = min(full)
            print(f"full recompute (baseline): {len(sids)} series × all readings: best"
                  f" {best_full * 1000:.0f} ms of {args.repeat} ({rep.readings_loaded:,} readings"
                  f" loaded, {rep.buckets_written} buckets written in the last)")

            t = time.perf_counter()
            start = datetime(2026, 3, 1, tzinfo=UTC)
            m = load_usage_matrix(conn, sids, start, start + timedelta(days=args.days))
            dt = time.perf_counter() - t
            total_ok = bool(np.isclose(m.quantity.sum(), m.quantity.size * 0.25, rtol=1e-9))
            print(f"load_usage_matrix: {m.quantity.size:,} cells in {dt:.2f} s "
                  f"= {m.quantity.size / dt:,.0f} rows/s (total {m.quantity.sum():.1f},"
                  f" expected {m.quantity.size * 0.25:.1f}: {total_ok})")
            fig, base = len(sids) / best_inc, len(sids) / best_full
            print(f"RESULT name=usage_refresh figure={fig:.0f} series/s baseline={base:.0f}"
                  f" series/s ratio={fig / base:.1f}x")
            fleet_ok = _fleet_equal(conn)
            print(f"check: fleet rollup == GROUP BY of usage_15m: {fleet_ok}")
            if not (same and total_ok and fleet_ok):
                raise SystemExit(1)
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
