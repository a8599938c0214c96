"""Freshness: a reading committed by the collector → visible in usage, analytics and the
running charge, under half the ingest benchmark's load.

    python3 dev.py bench freshness [--rate 140000] [--seconds 60]

A collector process (``python -m collector run --no-api``, default configuration: a usage
refresh pass as soon as a flush commits readings) consumes a background load of ``--rate``
readings/s (bench/ingest.py's publishers: 1,000-reading batches of cumulative counters, QoS 1;
140,000/s is half of the 281,257/s end-to-end figure in docs/benchmarks.md) from a private
Mosquitto. Meanwhile a probe publishes, every 0.2 s, a batch for a new device (two counter
readings 60 s apart). One observer connection polls every 20 ms and records, by wall clock,
when each probe batch is committed (its row in ``batches``) and when its usage is visible
(its rows in ``usage_15m``; ``usage_15m_daily``, which analytics and the running charge read,
is written in the same transaction). Freshness = visible − committed. The observer also
samples the age of the oldest range still waiting in ``usage_dirty`` (what every reading of
the background load waits at most, not only the probes) and the readings committed, for the
rate the collector sustained.

The naive baseline, in the same run on the same database, is the scheme before: no pass on
commit, a pass every 5 s (``TALLY_INGEST_USAGE_REFRESH_ON_COMMIT=false``,
``TALLY_INGEST_USAGE_REFRESH_S=5``). ``--refresh-s`` sets the fallback interval of the
measured configuration (default: the collector's default).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Outcome:
    p50: float
    p99: float
    seen: int
    sent: int
    lag_p99: float  # oldest range waiting in usage_dirty, p99 over the samples
    lag_max: float
    sustained: float  # readings/s committed while the probes ran


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _wait_consuming(mqtt_url: str, db: str, base_ms: int, device: str) -> None:
    """Re-publish a warm-up batch of this run's own device until the collector stored it
    (the database already holds the previous run's readings)."""
    client = ingest._client(mqtt_url, f"bench-warm-{uuid.uuid4().hex[:8]}")
    payload = encode_batch(ingest.make_batch(device, 0, 10, base_ms))
    try:
        for _ in range(200):
            client.publish(readings_topic(device), payload, qos=1).wait_for_publish(5)
            time.sleep(0.3)
            with psycopg.connect(db) as conn:
                if conn.execute("SELECT 1 FROM batches WHERE device_id = %s",
                                (device,)).fetchone():
                    return
        raise SystemExit("collector did not start consuming")
    finally:
        client.disconnect()
        client.loop_stop()


def run(db: str, mqtt_url: str, rate: float, seconds: float, env: dict[str, str],
        tag: str) -> Outcome:
    log = Path(tempfile.mkdtemp()) / "collector.log"
    print(f"  [{tag}] collector log {log}", flush=True)
    ingest.EXTRA_ENV.clear()
    ingest.EXTRA_ENV.update(env)
    proc = ingest.start_collector(db, mqtt_url, f"fresh-{tag}-{uuid.uuid4().hex[:6]}", log)
    base_ms = int(time.time() * 1000) // 86_400_000 * 86_400_000 - 86_400_000
    try:
        _wait_consuming(mqtt_url, db, base_ms, f"warmup-{tag}")
        committed: dict[str, float] = {}
        visible: dict[str, float] = {}
        lags: list[float] = []
        probing = threading.Event()
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
                    if probing.is_set():
                        row = conn.execute(
                            "SELECT coalesce(extract(epoch FROM clock_timestamp()"
                            " - min(queued_at)), 0)::float8 FROM usage_dirty"
                        ).fetchone()
                        lags.append(float(row[0]) if row else 0.0)
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
        time.sleep(min(5.0, seconds / 6))  # let the load settle before probing
        r0, t0 = ingest.count_readings(db), time.time()
        t_end = t0 + seconds
        probing.set()
        n = 0
        while time.time() < t_end:
            dev = f"probe-{tag}-{n}"
            client.publish(readings_topic(dev), encode_batch(probe_batch(dev, base_ms)), qos=1)
            n += 1
            time.sleep(0.2)
        sustained = (ingest.count_readings(db) - r0) / (time.time() - t0)
        probing.clear()
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
        return Outcome(_pct(lat, 0.5), _pct(lat, 0.99), len(lat), n,
                       _pct(lags, 0.99), max(lags, default=float("nan")), sustained)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=140_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--refresh-s", type=float, default=None,
                    help="fallback refresh interval of the measured run (default: the default)")
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
    fast_env = {} if args.refresh_s is None else {
        "TALLY_INGEST_USAGE_REFRESH_S": str(args.refresh_s)}
    naive_env = {"TALLY_INGEST_USAGE_REFRESH_S": "5",
                 "TALLY_INGEST_USAGE_REFRESH_ON_COMMIT": "false"}
    try:
        migrate(db)
        results = {}
        for tag, env, what in (("fast", fast_env, "pass on commit (default)"),
                               ("naive", naive_env, "pass every 5 s, none on commit")):
            o = run(db, mqtt_url, args.rate, args.seconds, env, tag)
            results[tag] = o
            print(f"{what}, {args.rate:,.0f} readings/s offered ({o.sustained:,.0f}/s"
                  f" committed): committed→visible p50 {o.p50 * 1000:.0f} ms,"
                  f" p99 {o.p99 * 1000:.0f} ms ({o.seen} of {o.sent} probe batches);"
                  f" oldest waiting range p99 {o.lag_p99 * 1000:.0f} ms,"
                  f" max {o.lag_max * 1000:.0f} ms", flush=True)
        f, n = results["fast"], results["naive"]
        print(f"RESULT freshness p99_ms={f.p99 * 1000:.0f} lag_p99_ms={f.lag_p99 * 1000:.0f}"
              f" naive_p99_ms={n.p99 * 1000:.0f} (pass every 5 s)"
              f" offered={args.rate:,.0f} committed={f.sustained:,.0f} readings/s")
    finally:
        broker.stop()
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
