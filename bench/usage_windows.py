"""Benchmark: the incremental refresh's window lookups after one ingest flush (plain PostgreSQL).

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
     python3 dev.py bench usage_windows [--series 200] [--days 31] [--repeat 7]

``series × days`` of 15-minute readings, then one new reading per series (the steady state of
ingest: every dirty range is at the tail of its series). Figure: ``derive_windows`` (one
statement for every series; the fallbacks bounded by the dirty range). Baseline, same run and
data: the same statement with the unbounded fallbacks it had before (``min``/``max`` over the
whole series, which on TimescaleDB touches every chunk of the series). Both must give the same
windows. Best of ``--repeat`` alternating runs each.
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
from collector.storage.usage_meters import load_meta
from collector.storage.usage_store import derive_windows

T0_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
BASELINE_SQL = (
    "WITH d AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[],"
    "   %s::int[]) AS d(sid, ts_from, ts_to, k)),"
    " w AS (SELECT d.sid, d.k,"
    "   date_bin('15 minutes', coalesce((SELECT r.ts FROM readings r WHERE"
    "     r.series_id = d.sid AND r.ts < d.ts_from ORDER BY r.ts DESC OFFSET d.k LIMIT 1),"
    "     (SELECT min(r.ts) FROM readings r WHERE r.series_id = d.sid), d.ts_from),"
    "     timestamptz 'epoch') AS lo,"
    "   date_bin('15 minutes', coalesce((SELECT r.ts FROM readings r WHERE"
    "     r.series_id = d.sid AND r.ts > d.ts_to ORDER BY r.ts OFFSET d.k LIMIT 1),"
    "     (SELECT max(r.ts) FROM readings r WHERE r.series_id = d.sid), d.ts_to),"
    "     timestamptz 'epoch') + interval '15 minutes' AS hi"
    "   FROM d)"
    " SELECT w.sid, extract(epoch FROM w.lo)::float8, extract(epoch FROM w.hi)::float8,"
    "  coalesce(extract(epoch FROM (SELECT r.ts FROM readings r WHERE r.series_id = w.sid"
    "    AND r.ts < w.lo ORDER BY r.ts DESC OFFSET w.k LIMIT 1))::float8, '-infinity'),"
    "  coalesce(extract(epoch FROM (SELECT r.ts FROM readings r WHERE r.series_id = w.sid"
    "    AND r.ts >= w.hi ORDER BY r.ts OFFSET w.k LIMIT 1))::float8, 'infinity')"
    " FROM w"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--repeat", type=int, default=7)
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
            per = args.days * 96 + 1
            steps = np.arange(per, dtype=np.int64)
            ts = np.repeat(T0_MS + steps * 900_000, len(sids))
            sid = np.tile(np.asarray(sids, dtype=np.int64), per)
            with conn.cursor() as cur, cur.copy(
                "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.write(encode_readings_copy(sid, ts, steps.repeat(len(sids)) * 0.25))
            conn.execute("VACUUM ANALYZE readings")
            last = datetime.fromtimestamp((T0_MS + (per - 1) * 900_000) / 1000, UTC)
            dirty = {s: (last, last) for s in sids}
            meta = load_meta(conn, sids)
            k = [meta[s].config.glitch_window + 1 for s in sids]
            new_t, old_t = [], []
            new = old = None
            for _ in range(args.repeat):
                t = time.perf_counter()
                new = sorted((w.meta.series_id, w.lo, w.hi, w.load_from, w.load_to)
                             for w in derive_windows(conn, dirty, meta))
                new_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                old = sorted(tuple(r) for r in conn.execute(
                    BASELINE_SQL, (sids, [last] * len(sids), [last] * len(sids), k)).fetchall())
                old_t.append(time.perf_counter() - t)
            same = new == old
            print(f"{len(sids)} series × {per:,} readings; dirty: the last reading of each")
            print(f"window lookups, bounded fallbacks: best {min(new_t) * 1000:.1f} ms")
            print(f"window lookups, unbounded (baseline): best {min(old_t) * 1000:.1f} ms")
            print(f"check: same windows: {same}")
            print(f"RESULT name=usage_windows figure={min(new_t) * 1000:.1f} ms"
                  f" baseline={min(old_t) * 1000:.1f} ms ratio={min(old_t) / min(new_t):.2f}x")
            if not same:
                raise SystemExit(1)
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
