"""Drain rate of the agent: publish a backlog of buffered readings into a local broker.

    python bench/agent_drain.py [--readings 1000000] [--batch 1000] [--encoding json|cbor]
                                [--broker mqtt://127.0.0.1:1883] [--in-flight 8] [--verify]
                                [--naive-readings 5000]

Fills a fresh SQLite buffer with N readings over 3 series, then runs the real agent pipeline
(SqliteBuffer -> seal -> load -> encode -> paho QoS 1 -> PUBACK -> delete) with no sources until
the buffer is empty, and prints readings/s. ``--verify`` also counts what a subscriber received.

Baseline (same run, same broker): the obvious first implementation on a sample
(``--naive-readings``): a SQLite table of denormalised readings (WAL, ``synchronous=NORMAL``,
the agent's own setting for acknowledgements), drained one reading at a time: select the oldest
row, publish it as one row-wise JSON message at QoS 1, wait for its PUBACK, delete the row and
commit. It publishes to ``tally-bench/<device>/naive`` so no collector takes it for a batch.

The final ``RESULT`` line: figure = agent readings/s, baseline = naive readings/s,
ratio = figure / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.buffer import SqliteBuffer
from agent.clock import SystemClock, to_ms
from agent.config import parse_config
from agent.protocol import Kind, Reading, decode_batch, readings_topic
from agent.publisher import MqttPublisher
from agent.runner import Agent

SERIES = [("main", "energy_import", "kWh"), ("water", "water_volume", "m³"),
          ("router", "data_transferred", "GB")]


async def fill(buf: SqliteBuffer, n: int, t0: int) -> None:
    chunk = 100_000
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            meter, metric, unit = SERIES[i % 3]
            rows.append(Reading(meter, metric, unit, Kind.CUMULATIVE, t0 + (i // 3) * 1000,
                                1000.0 + i * 0.001))
        await buf.append(rows)


def naive_drain(path: Path, n: int, t0: int, device: str, host: str, port: int) -> float:
    """Readings/s of the one-message-per-reading drain (the fill is not timed)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE readings(id INTEGER PRIMARY KEY, meter TEXT, metric TEXT,"
               " unit TEXT, kind TEXT, ts_ms INTEGER, value REAL)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO readings(meter, metric, unit, kind, ts_ms, value)"
                   " VALUES (?, ?, ?, ?, ?, ?)",
                   [(*SERIES[i % 3], Kind.CUMULATIVE.value, t0 + (i // 3) * 1000,
                     1000.0 + i * 0.001) for i in range(n)])
    db.execute("COMMIT")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device}-naive")
    client.connect(host, port)
    client.loop_start()
    topic = f"tally-bench/{device}/naive"
    sent = 0
    t = time.perf_counter()
    while True:
        row = db.execute("SELECT id, meter, metric, unit, kind, ts_ms, value FROM readings"
                         " ORDER BY id LIMIT 1").fetchone()
        if row is None:
            break
        rid, meter, metric, unit, kind, ts_ms, value = row
        payload = json.dumps({"device": device, "meter": meter, "metric": metric, "unit": unit,
                              "kind": kind, "ts": ts_ms, "value": value})
        client.publish(topic, payload, qos=1).wait_for_publish(30)
        db.execute("DELETE FROM readings WHERE id = ?", (rid,))
        sent += 1
    elapsed = time.perf_counter() - t
    client.disconnect()
    client.loop_stop()
    db.close()
    if sent != n:
        raise SystemExit(f"naive drain published {sent} of {n} readings")
    return n / elapsed


def file_bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern))


class Counter:
    def __init__(self, url_host: str, port: int, topic: str) -> None:
        self.readings = 0
        self.seqs: set[int] = set()
        self.ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
        self.c.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = self._msg
        self.c.connect(url_host, port)
        self.c.loop_start()
        self.ready.wait(10)

    def _msg(self, c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        b = decode_batch(m.payload, topic_device=None, now_ms=to_ms(SystemClock().now()))
        if b.seq not in self.seqs:
            self.seqs.add(b.seq)
            self.readings += b.reading_count


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--encoding", default="json", choices=["json", "cbor"])
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--naive-readings", type=int, default=5000,
                    help="readings the one-message-per-reading baseline drains")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tally-drain-"))
    try:
        await _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _run(args: argparse.Namespace, tmp: Path) -> None:
    device = f"bench-{uuid.uuid4().hex[:8]}"
    cfg = parse_config({
        "device_id": device, "encoding": args.encoding, "status_interval_s": 3600,
        "broker": {"url": args.broker}, "buffer": {"path": str(tmp / "buf.db"),
                                                   "max_readings": None},
        # no collector runs here to confirm batches: delete on PUBACK to measure the agent's own
        # publishing cost (end-to-end confirmation is measured by bench/ingest.py)
        "batch": {"max_readings": args.batch, "max_age_s": 0.05, "in_flight": args.in_flight,
                  "confirm": "broker"},
    })
    clock = SystemClock()
    now = to_ms(clock.now())
    buf = await SqliteBuffer.open(tmp / "buf.db", device_id=device, now_ms=now,
                                  limits=cfg.buffer.limits())
    t = time.perf_counter()
    await fill(buf, args.readings, now - args.readings * 400)
    size = file_bytes(tmp, "buf.db*")
    print(f"filled {args.readings:,} readings in {time.perf_counter() - t:.1f}s "
          f"({size / 1e6:.0f} MB incl. WAL)")
    base = naive_drain(tmp / "naive.db", args.naive_readings, now - args.naive_readings * 400,
                       device, cfg.broker.host, cfg.broker.port)
    print(f"naive: {args.naive_readings:,} readings, 1 message + PUBACK wait + 1 DELETE each:"
          f" {base:,.0f} readings/s")
    counter = None
    if args.verify:
        counter = Counter(cfg.broker.host, cfg.broker.port, readings_topic(device))
    pub = MqttPublisher(client_id=device, broker=cfg.broker, max_in_flight=args.in_flight + 4)
    agent = Agent(cfg, buffer=buf, publisher=pub, sources=[], clock=clock)
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    t = time.perf_counter()
    cpu = time.process_time()
    while buf.unbatched or buf.pending():  # noqa: ASYNC110 - polling the buffer is the point
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t
    cpu = time.process_time() - cpu
    stop.set()
    await run
    rate = agent.health.published_readings / elapsed
    print(f"drained {agent.health.published_readings:,} readings in "
          f"{agent.health.published_batches:,} batches of {args.batch} ({args.encoding}) "
          f"in {elapsed:.2f}s: {rate:,.0f} readings/s, "
          f"{agent.health.published_batches / elapsed:,.0f} batches/s")
    print(f"agent CPU time {cpu:.2f}s (all threads): "
          f"{cpu / agent.health.published_readings * 1e6:.2f} µs per reading, i.e. "
          f"{agent.health.published_readings / cpu:,.0f} readings per CPU-second")
    if counter is not None:
        deadline = time.monotonic() + 30
        while counter.readings < args.readings and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        print(f"subscriber received {counter.readings:,} distinct readings "
              f"in {len(counter.seqs):,} batches")
    print(f"RESULT name=agent_drain figure={rate:.0f} readings/s baseline={base:.0f}"
          f" readings/s ratio={rate / base:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
