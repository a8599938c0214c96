"""Benchmark: bytes per reading in the Parquet archive, on realistic meter series.

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
     python3 dev.py bench archive [--series 500] [--interval 900]

A month (January 2026) of cumulative energy registers read every ``--interval`` seconds: kWh
with 3 decimals, a daily profile with morning and evening peaks, each meter at its own level,
0-2 s of timestamp jitter. Loaded into PostgreSQL (plain flavour), then archived with
``archive_partition`` (export, read-back verification, detach, drop).

Figure: archive file bytes per reading (delta-encoded columns, zstd). Baselines in the same
run: the partition's size in PostgreSQL (table + index), and the same rows written to Parquet
with zstd but without the delta encoding.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from collector.storage.archive_store import Partition, archive_partition
from collector.storage.copy_binary import encode_readings_copy
from collector.storage.migrate import migrate

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument("--interval", type=int, default=900, help="seconds between readings")
    args = ap.parse_args()
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT tally_ensure_reading_partitions('2026-01-01', 2)")
            sids = [int(r[0]) for r in conn.execute(
                "INSERT INTO series (device_id, meter, metric, unit, kind)"
                " SELECT 'dev-' || g, 'main', 'energy', 'kWh', 'cumulative'"
                " FROM generate_series(1, %s) g RETURNING series_id",
                (args.series,)).fetchall()]
            rng = np.random.default_rng(11)
            per = 31 * 86400 // args.interval
            hours = (np.arange(per) * args.interval % 86400) / 3600
            profile = (0.05 + 0.2 * np.exp(-((hours - 19) / 3) ** 2)
                       + 0.1 * np.exp(-((hours - 8) / 2) ** 2)) * args.interval / 900
            inc = np.round(profile[None, :] * rng.uniform(0.5, 1.5, (len(sids), per)), 3)
            vals = (np.cumsum(inc, axis=1) + rng.uniform(1000, 50000, (len(sids), 1))).round(3)
            ts = int(JAN.timestamp() * 1000) + np.arange(per, dtype=np.int64) * args.interval * 1000
            ts_all = (ts[:, None] + rng.integers(0, 3, (per, len(sids))) * 1000).ravel()
            sid = np.tile(np.asarray(sids, dtype=np.int64), per)  # arrival order: time-major
            with conn.cursor() as cur, cur.copy(
                "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.write(encode_readings_copy(sid, ts_all, vals.T.ravel()))
            conn.execute("VACUUM ANALYZE readings_p202601")
            n = len(sids) * per
            row = conn.execute("SELECT pg_total_relation_size('readings_p202601')").fetchone()
            pg_bytes = int(row[0]) if row else 0
            plain = io.BytesIO()
            pq.write_table(pa.table({"series_id": sid, "ts": ts_all, "value": vals.T.ravel()}),
                           plain, compression="zstd", compression_level=9)
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                entry = archive_partition(conn, Partition("readings_p202601", JAN, FEB),
                                          Path(tmp))
                took = time.perf_counter() - t
            print(f"{n:,} readings ({len(sids)} series × {per:,}, every {args.interval} s)")
            print(f"PostgreSQL partition (table + index): {pg_bytes / n:.2f} bytes/reading")
            print(f"Parquet zstd, no delta encoding: {plain.tell() / n:.2f} bytes/reading")
            print(f"archive (delta-encoded, zstd): {entry.bytes / n:.2f} bytes/reading"
                  f" ({entry.bytes:,} bytes); export + verify + drop in {took:.2f} s"
                  f" = {n / took:,.0f} readings/s")
            print(f"RESULT name=archive figure={entry.bytes / n:.2f} bytes/reading"
                  f" baseline={plain.tell() / n:.2f} bytes/reading (Parquet zstd)"
                  f" ratio={plain.tell() / entry.bytes:.1f}x")
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
