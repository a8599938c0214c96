"""Scale-out: drain time of a broker backlog with 1, 2 and 4 collectors on one shared
subscription (``$share/ingest/tally/v1/+/readings``).

    python3 dev.py bench scaleout [--readings 1000000] [--collectors 1,2,4]

For each N, on a private Mosquitto and a fresh database: N collector processes subscribe
(``TALLY_MQTT_SHARED_GROUP=ingest``), are paused (SIGSTOP), the backlog is published (batches
of 1000 readings, QoS 1; the broker spreads them over the N sessions), the collectors resume
(SIGCONT) and the clock runs until the last reading is committed. Each run also checks that
``readings`` holds exactly the readings of the stored batches (none twice).

Baseline (same run): N = 1. RESULT: figure = readings/s with the largest N, baseline = with
one collector, ratio = speed-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from ingest import _client, make_batch, with_db  # bench/ingest.py (same directory)

from agent.protocol import encode_batch, readings_topic
from collector.embedded.broker import MqttBroker
from collector.storage.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]


def _count(db: str) -> tuple[int, int]:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT count(*), coalesce(sum(reading_count), 0) FROM batches"
                           ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def drain(server: str, n: int, readings: int, work: Path) -> tuple[float, int]:
    dbname = f"tally_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    db = with_db(server, dbname)
    broker = MqttBroker(work / f"broker-{n}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate(db, use_timescale=False)
        broker.start()
        for k in range(n):
            env = {**os.environ, "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true",  # unenrolled
                   "TALLY_DATABASE_URL": db, "TALLY_MQTT_URL": broker.url,
                   "TALLY_MQTT_CLIENT_ID": f"scale-{n}-{k}", "TALLY_MQTT_SHARED_GROUP": "ingest",
                   "TALLY_INGEST_USAGE_REFRESH_S": "0", "PYTHONPATH": str(ROOT)}
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "collector", "--log-level", "WARNING", "run",
                 "--no-api"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                stderr=(work / f"collector-{n}-{k}.log").open("wb")))
        # warm up: every collector must be subscribed before the backlog is published
        client = _client(broker.url, f"scale-pub-{n}")
        base_ms = 1_764_547_200_000
        for s in range(4 * n):
            client.publish(readings_topic(f"warm-{s}"), encode_batch(
                make_batch(f"warm-{s}", 0, 10, base_ms)), qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 60
        while _count(db)[0] < 4 * n and time.monotonic() < deadline:
            for s in range(4 * n):  # re-sent: a batch lost before a session existed
                client.publish(readings_topic(f"warm-{s}"), encode_batch(
                    make_batch(f"warm-{s}", 0, 10, base_ms)), qos=1)
            time.sleep(1)
        time.sleep(2)
        for p in procs:
            p.send_signal(signal.SIGSTOP)
        per_batch = 1000
        batches = readings // per_batch
        payloads = [(readings_topic(f"dev-{b % 100}"),
                     encode_batch(make_batch(f"dev-{b % 100}", b // 100 + 1, per_batch, base_ms)))
                    for b in range(batches)]
        infos = [client.publish(t, p, qos=1) for t, p in payloads]
        for info in infos:
            info.wait_for_publish(60)
        before = _count(db)[1]
        t0 = time.monotonic()
        for p in procs:
            p.send_signal(signal.SIGCONT)
        target = before + batches * per_batch
        while _count(db)[1] < target:
            if time.monotonic() - t0 > 900:
                raise SystemExit(f"N={n}: not drained after 900 s ({_count(db)[1]}/{target})")
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        client.disconnect()
        client.loop_stop()
        stored = _count(db)[1] - before
        with psycopg.connect(db) as conn:
            rows = conn.execute("SELECT count(*) FROM readings").fetchone()
        if rows is None or int(rows[0]) != _count(db)[1]:
            raise SystemExit(f"N={n}: readings {rows} != readings of stored batches")
        return elapsed, stored
    finally:
        for p in procs:
            p.send_signal(signal.SIGCONT)
            p.terminate()
            p.wait(30)
        broker.stop()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--collectors", default="1,2,4")
    ap.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tally-scale-"))
    rates = {}
    try:
        for n in (int(x) for x in args.collectors.split(",")):
            elapsed, stored = drain(args.database_url, n, args.readings, work)
            rates[n] = stored / elapsed
            print(f"collectors={n}: backlog of {stored} readings drained in {elapsed:.1f} s "
                  f"= {rates[n]:,.0f} readings/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    top = max(rates)
    one = rates[min(rates)]
    print(f"RESULT scaleout_readings_per_s={rates[top]:.0f} (N={top}) "
          f"baseline_one_collector={one:.0f} ratio={rates[top] / one:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
