"""End-to-end ingest benchmark: publish → broker → collector → committed rows in PostgreSQL.

    python bench/ingest.py --readings 1000000

Measures, in one run and against the same fresh database:

1. ceiling   raw binary COPY of the same number of readings into ``readings``;
2. e2e       several publisher processes publish batches of 1000 readings (QoS 1) to the broker;
             a collector process (``python -m collector run --no-api``) stores them and, after
             each commit, acknowledges them end to end on ``tally/v1/<device>/ack``, which the
             publishers subscribe to as agents do; the clock stops when the last batch is
             committed (visible in ``batches``) and, separately, when the publishers have
             received the acknowledgement of every batch (what an agent needs to forget it);
3. naive     one message per reading and one INSERT + COMMIT per row (a small N);
4. latency   publish→commit and publish→acknowledgement-received p50/p99 while publishing at
             half the measured e2e rate;
5. bytes per reading on the wire (JSON and CBOR) and on disk (table + index size / rows).

Uses ``DATABASE_URL`` (a server; a fresh database is created and dropped) and, if given with
``--mqtt-url``, an existing broker; by default a private Mosquitto (``collector.embedded``)
so that its queue limits (``max_queued_messages``) are generous and nothing else shares it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.errors import ProtocolError  # noqa: E402
from agent.protocol import (  # noqa: E402
    Batch,
    Encoding,
    Kind,
    Series,
    decode_batch,
    encode_batch,
    readings_topic,
)
from agent.protocol_ack import ack_topic, decode_ack  # noqa: E402
from collector.embedded.broker import MqttBroker  # noqa: E402
from collector.storage.copy_binary import encode_readings_copy  # noqa: E402
from collector.storage.migrate import migrate  # noqa: E402

METERS_PER_BATCH = 10
EXTRA_ENV: dict[str, str] = {}


def with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def make_batch(device: str, seq: int, per_batch: int, base_ms: int) -> Batch:
    n = per_batch // METERS_PER_BATCH
    rng = np.random.default_rng(seq)
    series = []
    for m in range(METERS_PER_BATCH):
        ts = base_ms + (seq * n + np.arange(n, dtype=np.int64)) * 1000
        vals = np.round(1000.0 + np.cumsum(rng.random(n)), 3)
        series.append(Series(f"m{m}", "energy", "kWh", Kind.CUMULATIVE, ts, vals))
    return Batch(device, seq, base_ms, "bench", tuple(series))


# ---------------------------------------------------------------- publishers (child processes)


def _client(url: str, cid: str) -> mqtt.Client:
    parts = urlsplit(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=60)
    c.loop_start()
    return c


def publisher_main(url: str, devices: list[str], batches_per_device: int, per_batch: int,
                   base_ms: int, start: object, rate_bps: float, out: object) -> None:
    """Pre-encode, wait for ``start``, publish everything (paced if ``rate_bps`` > 0)."""
    payloads = [
        (readings_topic(d), encode_batch(make_batch(d, s, per_batch, base_ms)), d, s)
        for s in range(batches_per_device) for d in devices
    ]
    client = _client(url, f"bench-pub-{uuid.uuid4().hex[:8]}")
    acked: dict[tuple[str, int], float] = {}
    subscribed = threading.Event()

    def on_ack(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        device = msg.topic.split("/")[2]
        try:
            ack = decode_ack(bytes(msg.payload), topic_device=device)
        except ProtocolError:
            return
        for lo, hi in ack.ok:
            for seq in range(lo, hi + 1):
                acked.setdefault((device, seq), now)

    client.on_message = on_ack
    client.on_subscribe = lambda *a: subscribed.set()
    client.subscribe([(ack_topic(d), 1) for d in devices])
    subscribed.wait(30)
    start.wait()  # type: ignore[attr-defined]
    t0 = time.time()
    sent: list[tuple[str, int, float]] = []
    infos = []
    for i, (topic, payload, d, s) in enumerate(payloads):
        if rate_bps > 0:
            due = t0 + i / rate_bps
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        sent.append((d, s, time.time()))
        infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(120)
    deadline = time.time() + 120
    while len(acked) < len(payloads) and time.time() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    out.put((sent, dict(acked)))  # type: ignore[attr-defined]


def count_readings(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT coalesce(sum(reading_count), 0) FROM batches").fetchone()
    return int(row[0]) if row else 0


def start_collector(db: str, mqtt_url: str, client_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true",  # unenrolled
           "TALLY_DATABASE_URL": db, "TALLY_MQTT_URL": mqtt_url,
           "TALLY_MQTT_CLIENT_ID": client_id, "TALLY_MQTT_READINGS_TOPIC": "tally/v1/+/readings",
           "PYTHONPATH": str(ROOT), **EXTRA_ENV}
    return subprocess.Popen([sys.executable, "-m", "collector", "--log-level", "WARNING", "run",
                             "--no-api"], cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)


def wait_subscribed(mqtt_url: str, db: str, base_ms: int) -> None:
    """Re-publish a warm-up batch until the collector has stored it."""
    client = _client(mqtt_url, f"bench-warm-{uuid.uuid4().hex[:8]}")
    batch = make_batch("warmup", 0, 10, base_ms)
    for _ in range(100):
        client.publish(readings_topic("warmup"), encode_batch(batch), qos=1).wait_for_publish(5)
        time.sleep(0.3)
        if count_readings(db) >= 10:
            break
    else:
        raise SystemExit("collector did not start consuming")
    client.disconnect()
    client.loop_stop()


def run_publishers(mqtt_url: str, publishers: int, devices_per_pub: int, batches_per_device: int,
                   per_batch: int, base_ms: int, rate_bps: float, prefix: str,
                   ) -> tuple[Any, list[Any], Any]:
    ctx = mp.get_context("fork")
    start = ctx.Event()
    out = ctx.Queue()
    procs = []
    for p in range(publishers):
        devices = [f"{prefix}-{p}-{d}" for d in range(devices_per_pub)]
        proc = ctx.Process(target=publisher_main, args=(
            mqtt_url, devices, batches_per_device, per_batch, base_ms, start,
            rate_bps / publishers if rate_bps else 0.0, out))
        proc.start()
        procs.append(proc)
    return start, procs, out


def e2e(db: str, mqtt_url: str, readings: int, publishers: int, per_batch: int,
        base_ms: int) -> tuple[float, float]:
    """(readings/s until the last commit, readings/s until the last acknowledgement received)."""
    batches = readings // per_batch
    devices_per_pub = 5
    per_device = max(1, batches // (publishers * devices_per_pub))
    total = per_device * publishers * devices_per_pub * per_batch
    before = count_readings(db)
    start, procs, out = run_publishers(mqtt_url, publishers, devices_per_pub, per_device,
                                       per_batch, base_ms, 0.0, "e2e")
    time.sleep(min(30.0, 0.5 + total / 2_000_000))  # let the publishers pre-encode
    t0 = time.perf_counter()
    t0_wall = time.time()
    start.set()
    while count_readings(db) - before < total:
        time.sleep(0.02)
        if time.perf_counter() - t0 > 600:
            raise SystemExit("end-to-end run did not finish in 10 minutes")
    elapsed = time.perf_counter() - t0
    last_ack = 0.0
    acks = 0
    for _ in procs:
        _, acked = out.get(timeout=180)
        acks += len(acked)
        last_ack = max([last_ack, *acked.values()])
    for p in procs:
        p.join(30)
    if acks < total // per_batch:
        print(f"  warning: {total // per_batch - acks} batches never acknowledged")
    return total / elapsed, total / max(last_ack - t0_wall, 1e-9)


def latency(db: str, mqtt_url: str, rate_rps: float, seconds: float, publishers: int,
            per_batch: int, base_ms: int) -> tuple[float, float, int, float, float, int]:
    """p50, p99, n of publish→commit, then of publish→acknowledgement received."""
    rate_bps = rate_rps / per_batch
    devices_per_pub = 2
    per_device = max(1, int(rate_bps * seconds / (publishers * devices_per_pub)))
    seen: dict[tuple[str, int], float] = {}
    stop = threading.Event()

    def observe() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            while not stop.is_set():
                now = time.time()
                for d, s in conn.execute(
                    "SELECT device_id, seq FROM batches WHERE device_id LIKE 'lat-%%'"
                ):
                    seen.setdefault((d, int(s)), now)
                time.sleep(0.01)

    start, procs, out = run_publishers(mqtt_url, publishers, devices_per_pub, per_device,
                                       per_batch, base_ms, rate_bps, "lat")
    time.sleep(1.0 + per_device * publishers * devices_per_pub / 2000)
    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    start.set()
    sent: list[tuple[str, int, float]] = []
    acked: dict[tuple[str, int], float] = {}
    for _ in procs:
        part, part_acked = out.get(timeout=seconds * 4 + 240)
        sent.extend(part)
        acked.update(part_acked)
    deadline = time.time() + 60
    while len(seen) < len(sent) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    watcher.join(5)
    for p in procs:
        p.join(30)
    lat = sorted(seen[(d, s)] - t for d, s, t in sent if (d, s) in seen)
    if len(lat) < len(sent):
        print(f"  warning: {len(sent) - len(lat)} batches not seen within 60 s")
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    ack_lat = sorted(acked[(d, s)] - t for d, s, t in sent if (d, s) in acked)
    if len(ack_lat) < len(sent):
        print(f"  warning: {len(sent) - len(ack_lat)} batches not acknowledged within 120 s")
    a50 = statistics.median(ack_lat)
    a99 = ack_lat[min(len(ack_lat) - 1, int(0.99 * len(ack_lat)))]
    return p50, p99, len(lat), a50, a99, len(ack_lat)


def copy_ceiling(db: str, readings: int, base_ms: int) -> float:
    n_series = 100
    sids = np.repeat(np.arange(1, n_series + 1, dtype=np.int64), readings // n_series)
    ts = base_ms + np.tile(np.arange(readings // n_series, dtype=np.int64) * 1000, n_series)
    vals = np.random.default_rng(1).random(sids.shape[0]) * 1000
    with psycopg.connect(db) as conn:
        t0 = time.perf_counter()
        data = encode_readings_copy(sids, ts, vals)
        with conn.cursor() as cur, cur.copy(
            "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            for off in range(0, len(data), 8 << 20):
                copy.write(data[off:off + (8 << 20)])
        conn.commit()
        elapsed = time.perf_counter() - t0
        conn.execute("TRUNCATE readings")
        conn.commit()
    return sids.shape[0] / elapsed


def naive(db: str, mqtt_url: str, readings: int, base_ms: int) -> float:
    """One message per reading; a subscriber doing one INSERT + COMMIT per reading."""
    parts = urlsplit(mqtt_url)
    done = threading.Event()
    got = [0]
    conn = psycopg.connect(db, autocommit=True)
    sid_row = conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind) VALUES"
        " ('naive', 'm0', 'energy', 'kWh', 'cumulative') RETURNING series_id"
    ).fetchone()
    assert sid_row is not None
    sid = int(sid_row[0])

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        now_ms = int(time.time() * 1000)
        batch = decode_batch(bytes(msg.payload), topic_device="naive", now_ms=now_ms)
        for s in batch.series:
            for t, v in zip(s.ts_ms.tolist(), s.values.tolist(), strict=True):
                conn.execute("INSERT INTO readings (series_id, ts, value) VALUES"
                             " (%s, to_timestamp(%s / 1000.0), %s)", (sid, t, v))
        got[0] += 1
        if got[0] >= readings:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"naive-{uuid.uuid4().hex[:8]}")
    sub.on_message = on_message
    sub.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    sub.subscribe("tally/v1/naive/readings", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    payloads = [encode_batch(Batch("naive", i, base_ms, "bench", (Series(
        "m0", "energy", "kWh", Kind.CUMULATIVE, np.array([base_ms + i * 1000], dtype=np.int64),
        np.array([float(i)]),),))) for i in range(readings)]
    pub = _client(mqtt_url, f"naive-pub-{uuid.uuid4().hex[:8]}")
    t0 = time.perf_counter()
    for p in payloads:
        pub.publish("tally/v1/naive/readings", p, qos=1)
    done.wait(300)
    elapsed = time.perf_counter() - t0
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    conn.close()
    return readings / elapsed


def disk_bytes_per_reading(db: str) -> tuple[float, int]:
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT count(*) FROM readings").fetchone()
        size = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)"
            " + pg_total_relation_size('readings') FROM pg_inherits"
            " WHERE inhparent = 'readings'::regclass"
        ).fetchone()
    n = int(rows[0]) if rows else 0
    return (int(size[0]) / n if size and n else float("nan")), n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000, help="readings per published batch")
    # One publisher process per core: more oversubscribes the 2-core machine and the publishers
    # then steal CPU from the broker, collector and PostgreSQL being measured.
    ap.add_argument("--publishers", type=int, default=os.cpu_count() or 2,
                    help="publisher processes (default: one per core)")
    ap.add_argument("--naive-readings", type=int, default=3000)
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1/postgres"))
    ap.add_argument("--mqtt-url", default=None, help="an existing broker (default: private)")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = ap.parse_args()

    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = with_db(args.database_url, name)
    tmp = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    broker = None
    mqtt_url = args.mqtt_url
    if mqtt_url is None:
        broker = MqttBroker(tmp / "broker")
        mqtt_url = broker.start()
    client_id = f"bench-collector-{uuid.uuid4().hex[:8]}"
    collector = None
    base_ms = int(time.time() * 1000) - 6 * 3600 * 1000
    try:
        migrate(db)
        sample = make_batch("dev-000", 1, args.batch, base_ms)
        wire_json = len(encode_batch(sample)) / args.batch
        wire_cbor = len(encode_batch(sample, Encoding.CBOR)) / args.batch
        print(f"database {name}; broker {mqtt_url}; {os.cpu_count()} CPUs")

        ceiling = copy_ceiling(db, args.readings, base_ms)
        print(f"ceiling  binary COPY          : {ceiling:>12,.0f} readings/s")

        collector = start_collector(db, mqtt_url, client_id, tmp / "collector.log")
        wait_subscribed(mqtt_url, db, base_ms)
        commit_rate, rate = e2e(db, mqtt_url, args.readings, args.publishers, args.batch,
                                base_ms)
        print(f"e2e      publish→commit       : {commit_rate:>12,.0f} readings/s")
        print(f"e2e      publish→ack received : {rate:>12,.0f} readings/s"
              f"  ({rate / ceiling:.0%} of COPY ceiling; target 200,000)")

        p50, p99, n, a50, a99, an = latency(db, mqtt_url, rate / 2, args.latency_seconds,
                                            args.publishers, args.batch, base_ms)
        print(f"latency  at {rate / 2:,.0f} readings/s : publish→commit p50 {p50 * 1000:.0f} ms,"
              f" p99 {p99 * 1000:.0f} ms over {n} batches")
        print(f"latency  publish→ack received : p50 {a50 * 1000:.0f} ms,"
              f" p99 {a99 * 1000:.0f} ms over {an} batches (target p99 <= 2000 ms)")

        disk, rows = disk_bytes_per_reading(db)
        print(f"bytes/reading wire            : {wire_json:.1f} (JSON), {wire_cbor:.1f} (CBOR)")
        print(f"bytes/reading disk            : {disk:.1f} (table + index, {rows:,} rows)")

        base = naive(db, mqtt_url, args.naive_readings, base_ms)
        print(f"naive    1 msg + 1 INSERT/row : {base:>12,.0f} readings/s"
              f"  (e2e is {rate / base:,.0f}x faster)")
        print(json.dumps({"ceiling_rps": round(ceiling), "e2e_rps": round(rate),
                          "e2e_commit_rps": round(commit_rate),
                          "ack_latency_p50_ms": round(a50 * 1000),
                          "ack_latency_p99_ms": round(a99 * 1000),
                          "naive_rps": round(base), "e2e_vs_ceiling": round(rate / ceiling, 3),
                          "e2e_vs_naive": round(rate / base, 1),
                          "latency_p50_ms": round(p50 * 1000), "latency_p99_ms": round(p99 * 1000),
                          "wire_bytes_json": round(wire_json, 1),
                          "wire_bytes_cbor": round(wire_cbor, 1),
                          "disk_bytes": round(disk, 1)}))
        print(f"RESULT name=ingest figure={rate:.0f} readings/s baseline={base:.0f} readings/s"
              f" ratio={rate / base:.1f}x")
    finally:
        if collector is not None:
            collector.terminate()
            collector.wait(30)
        if broker is not None:
            broker.stop()
        if not args.keep:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
