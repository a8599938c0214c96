"""Freshness: a reading committed by the collector → visible in usage, analytics and the
running charge, under half the ingest benchmark's load.

    python3 dev.py bench freshness [--rate 140000] [--seconds 60] [--refresh-s 0.5]

A collector process (``python -m collector run --no-api``, usage refresh every
``--refresh-s``) consumes a background load of ``--rate`` readings/s (bench/ingest.py's
publishers: 1,000-reading batches of cumulative counters, QoS 1; 140,000/s is half of the
281,257/s end-to-end figure in docs/benchmarks.md) from a private Mosquitto. Meanwhile a
probe publishes, every 0.2 s, a batch for a new device (two counter readings 60 s apart).
One observer connection polls every 20 ms and records, by wall clock, when each probe batch
is committed (its row in ``batches``) and when its usage is visible (its rows in
``usage_15m``; ``usage_15m_daily``, which analytics and the running charge read, is written
in the same transaction). Freshness = visible − committed. The naive baseline is the same
with the default refresh interval (5 s), measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # the ingest benchmark's publishers, collector launcher and helpers
import numpy as np

from agent.protocol import Batch, Kind, Series, encode_batch, readings_topic
from collector.embedded.broker import MqttBroker
from collector.storage.migrate import migrate


def probe_batch(device: str, base_ms: int) -> Batch:
    ts = np.asarray([base_ms, base_ms + 60_000], dtype=np.int64)
    vals = np.asarray([100.0, 100.5])
    return Batch(device, 0, base_ms, "probe", (Series("p", "energy", "kWh", Kind.CUMULATIVE,
                                                       ts, vals),))


def run(db: str, mqtt_url: str, rate: float, seconds: float, refresh_s: float,
        tag: str) -> tuple[float, float, int, int]:
    log = Path(tempfile.mkdtemp()) / "collector.log"
    ingest.EXTRA_ENV["TALLY_INGEST_USAGE_REFRESH_S"] = str(refresh_s)
    proc = ingest.start_collector(db, mqtt_url, f"fresh-{tag}-{uuid.uuid4().hex[:6]}", log)
    base_ms = int(time.time() * 1000) // 86_400_000 * 86_400_000 - 86_400_000
    try:
        ingest.wait_subscribed(mqtt_url, db, base_ms)
        committed: dict[str, float] = {}
        visible: dict[str, float] = {}
        stop = threading.Event()

        def observe() -> None:
            with psycopg.connect(db, autocommit=True) as conn:
                while not stop.is_set():
                    now = time.time()
                    for (d,) in conn.execute(
                        "SELECT device_id FROM batches WHERE device_id LIKE %s",
                        (f"probe-{tag}-%",),
                    ):
                        committed.setdefault(d, now)
                    for (d,) in conn.execute(
                        "SELECT DISTINCT s.device_id FROM series s JOIN usage_15m u"
                        " USING (series_id) WHERE s.device_id LIKE %s",
                        (f"probe-{tag}-%",),
                    ):
                        visible.setdefault(d, now)
                    time.sleep(0.02)

        watcher = threading.Thread(target=observe, daemon=True)
        watcher.start()
        per_batch = 1000
        rate_bps = rate / per_batch
        publishers = 2
        per_device = max(1, int(rate_bps * seconds / (publishers * 5)))
        start, procs, out = ingest.run_publishers(
            mqtt_url, publishers, 5, per_device, per_batch, base_ms, rate_bps, f"load{tag}"
        )
        time.sleep(1.0 + per_device * publishers * 5 / 2000)
        start.set()
        client = ingest._client(mqtt_url, f"probe-{uuid.uuid4().hex[:6]}")
        t_end = time.time() + seconds
        n = 0
        while time.time() < t_end:
            dev = f"probe-{tag}-{n}"
            client.publish(readings_topic(dev), encode_batch(probe_batch(dev, base_ms)), qos=1)
            n += 1
            time.sleep(0.2)
        for _ in procs:
            out.get(timeout=seconds * 4 + 120)
        deadline = time.time() + 30
        while len(visible) < n and time.time() < deadline:
            time.sleep(0.1)
        stop.set()
        watcher.join(5)
        client.disconnect()
        client.loop_stop()
        for p in procs:
            p.join(30)
        lat = sorted(visible[d] - committed[d] for d in visible if d in committed)
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        return p50, p99, len(lat), n
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=140_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--refresh-s", type=float, default=0.5)
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = ap.parse_args()
    name = f"tally_bench_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = ingest.with_db(args.database_url, name)
    broker = MqttBroker(Path(tempfile.mkdtemp()))
    mqtt_url = broker.start()
    try:
        migrate(db)
        results = {}
        for tag, refresh in (("fast", args.refresh_s), ("naive", 5.0)):
            p50, p99, seen, sent = run(db, mqtt_url, args.rate, args.seconds, refresh, tag)
            results[tag] = (p50, p99)
            print(f"refresh every {refresh:.1f} s, {args.rate:,.0f} readings/s load:"
                  f" committed→visible p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
                  f" ({seen} of {sent} probe batches)")
        f99 = results["fast"][1]
        n99 = results["naive"][1]
        print(f"RESULT freshness p99_ms={f99 * 1000:.0f} (refresh {args.refresh_s} s)"
              f" naive_p99_ms={n99 * 1000:.0f} (refresh 5 s) load={args.rate:,.0f} readings/s")
    finally:
        broker.stop()
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
