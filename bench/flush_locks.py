"""Cost of the ingest flush's lock order: one device_ingest upsert per flush against two.

    python3 dev.py bench flush_locks [--flushes 40] [--devices 100] [--readings 1000]

Before the lock order was fixed, a flush counted its new batches in one ``device_ingest``
upsert and recorded the confirmed seqs in a second ``UPDATE`` (rows in any order), which
deadlocked two collectors on one shared subscription. Now both are one upsert over the devices
sorted by id (``collector/storage/ingest_store.py``). This times ``ReadingStore.write`` of the
same kind of flush both ways in one run, alternating, on a fresh database on ``DATABASE_URL``
(dropped at the end): each flush holds one new batch of ``--readings`` readings (10 meters) for
each of ``--devices`` devices, every device also confirmed, as a collector's flushes are.

Prints the median time of whole flushes and of their ``device_ingest`` statement(s).
RESULT: figure = median ms of the one upsert per flush, baseline = the two statements (same
run), with the whole flushes' medians beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

import numpy as np
import psycopg
from ingest import with_db  # bench/ingest.py (same directory)

from agent.protocol import Batch, Kind, Series, encode_batch, readings_topic
from collector.ingest.acks import confirmed_upto
from collector.ingest.messages import DecodedBatch, FlushPlan
from collector.storage.database import open_pool
from collector.storage.ingest_store import ReadingStore
from collector.storage.migrate import migrate

METERS = 10


class OneStatementStore(ReadingStore):
    """The flush as it is, timing its ``device_ingest`` statement."""

    spent: list[float]

    def _update_device_ingest(  # type: ignore[override]
        self, conn: psycopg.Connection[tuple[object, ...]], batches: list[DecodedBatch],
        floors: tuple[tuple[str, int], ...], durable: dict[str, tuple[int, ...]],
    ) -> None:
        t = time.perf_counter()
        ReadingStore._update_device_ingest(conn, batches, floors, durable)
        self.spent.append(time.perf_counter() - t)


class TwoStatementStore(OneStatementStore):
    """The flush as it was: batch-count upsert, then a confirmed-seq UPDATE (the baseline)."""

    def _update_device_ingest(  # type: ignore[override]
        self, conn: psycopg.Connection[tuple[object, ...]], batches: list[DecodedBatch],
        floors: tuple[tuple[str, int], ...], durable: dict[str, tuple[int, ...]],
    ) -> None:
        t = time.perf_counter()
        if batches:
            conn.execute(
                "INSERT INTO device_ingest AS di"
                " (device_id, batches, readings, first_seq, last_seq, last_seen)"
                " SELECT d, count(*), sum(n), min(s), max(s), to_timestamp(max(t)::double"
                " precision / 1000) FROM unnest(%s::text[], %s::bigint[], %s::bigint[],"
                " %s::bigint[]) AS x(d, s, n, t) GROUP BY d ORDER BY d"
                " ON CONFLICT (device_id) DO UPDATE SET batches = di.batches + EXCLUDED.batches,"
                " readings = di.readings + EXCLUDED.readings,"
                " first_seq = least(di.first_seq, EXCLUDED.first_seq),"
                " last_seq = greatest(di.last_seq, EXCLUDED.last_seq),"
                " last_seen = greatest(di.last_seen, EXCLUDED.last_seen)",
                ([b.batch.device for b in batches], [b.batch.seq for b in batches],
                 [b.batch.reading_count for b in batches], [b.received_ms for b in batches]),
            )
        tops = [(d, top) for d, f in floors
                if (top := confirmed_upto(f, durable.get(d, ()))) is not None]
        if tops:
            conn.execute(
                "UPDATE device_ingest AS di SET confirmed_seq = greatest(di.confirmed_seq, x.s),"
                " confirmed_at = now() FROM unnest(%s::text[], %s::bigint[]) AS x(d, s)"
                " WHERE di.device_id = x.d",
                ([d for d, _ in tops], [s for _, s in tops]),
            )
        self.spent.append(time.perf_counter() - t)


def _batch(device: str, seq: int, per_batch: int, base_ms: int) -> DecodedBatch:
    n = per_batch // METERS
    idx = seq * n + np.arange(n, dtype=np.int64)
    series = tuple(Series(f"m{m}", "energy", "kWh", Kind.CUMULATIVE, base_ms + idx * 1000,
                          (1000.0 + m + idx * 0.001).astype(np.float64))
                   for m in range(METERS))
    batch = Batch(device, seq, base_ms, "bench", series)
    return DecodedBatch(batch, readings_topic(device), encode_batch(batch), base_ms)


def _plan(devices: list[str], seq: int, per_batch: int, base_ms: int) -> FlushPlan:
    return FlushPlan(batches=tuple(_batch(d, seq, per_batch, base_ms) for d in devices),
                     ack_from=tuple((d, 0) for d in devices))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flushes", type=int, default=40, help="timed flushes per variant")
    ap.add_argument("--devices", type=int, default=100, help="devices (batches) per flush")
    ap.add_argument("--readings", type=int, default=1000, help="readings per batch")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL",
                                                             "postgresql://127.0.0.1/postgres"))
    ap.add_argument("--database-prefix", default="tally_bench",
                    help="prefix of the fresh database's name")
    args = ap.parse_args()
    name = f"{args.database_prefix}_flush_locks_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = with_db(args.database_url, name)
    try:
        migrate(db, use_timescale=False)
        pool = open_pool(db, min_size=1, max_size=1)
        pool.wait(10)
        stores: dict[str, OneStatementStore] = {"now": OneStatementStore(pool),
                                                "baseline": TwoStatementStore(pool)}
        for store in stores.values():
            store.spent = []
        devices = {k: [f"{k}-{i:04d}" for i in range(args.devices)] for k in stores}
        base_ms = 1_764_000_000_000
        times: dict[str, list[float]] = {k: [] for k in stores}
        for seq in range(args.flushes + 2):  # the first two warm the caches up, untimed
            order = list(stores) if seq % 2 else list(reversed(stores))
            for k in order:  # alternating which goes first, so drifts of the load hit both
                store = stores[k]
                plan = _plan(devices[k], seq, args.readings, base_ms)
                t = time.perf_counter()
                store.write(plan)
                if seq >= 2:
                    times[k].append(time.perf_counter() - t)
                else:
                    store.spent.clear()
        with pool.connection() as conn:
            rows = conn.execute("SELECT count(*), min(confirmed_seq), max(confirmed_seq)"
                                " FROM device_ingest").fetchone()
        pool.close()
        now, base = (statistics.median(stores[k].spent) * 1000 for k in ("now", "baseline"))
        print(f"{args.flushes} flushes each of {args.devices} batches × {args.readings} readings;"
              f" device_ingest rows, confirmed seq min/max: {rows}; load {os.getloadavg()}")
        for k, store in stores.items():
            v = sorted(times[k])
            print(f"  {k:>8}: flush median {statistics.median(v) * 1000:7.1f} ms,"
                  f" p90 {v[int(0.9 * len(v))] * 1000:7.1f} ms; device_ingest statement(s)"
                  f" median {statistics.median(store.spent) * 1000:6.2f} ms")
        print(f"RESULT name=flush_locks figure={now:.2f} ms baseline={base:.2f} ms"
              f" ratio={now / base:.3f} (device_ingest per flush; whole flush"
              f" {statistics.median(times['now']) * 1000:.0f} vs"
              f" {statistics.median(times['baseline']) * 1000:.0f} ms)")
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
