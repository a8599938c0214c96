"""A week-long outage at the edge: buffer size, drain speed, live readings during the drain, RSS.

    python3 dev.py bench agent_outage [--days 7] [--channels 10] [--rss-minutes 5]
                                      [--lock /work/bench.lock]

1. fill     ``--channels`` meters at 1 Hz for ``--days`` days (10 × 7 days = 6,048,000 readings)
            go into a fresh agent buffer through the real API (``SqliteBuffer.append``, an hour
            of readings per call, ``max_bytes`` = 1 GB, ``refuse_new``: a reading that does not
            fit fails the run); bytes on disk = database + WAL + shared-memory file. Baseline:
            a naive SQLite table with one denormalised row per reading (meter, metric, unit and
            kind as text; one day of readings, scaled up).
2. drain    the agent (``Agent`` with that buffer, ``MqttPublisher``, end-to-end confirmation)
            reconnects to a private Mosquitto; a collector process stores into a fresh database
            on a private PostgreSQL; the same meters keep producing one reading per second each
            (live). Drain time: until the collector has confirmed every backlog reading (the
            buffer holds none older than the reconnection). Live latency: a live reading's
            timestamp → the moment it is visible in PostgreSQL (polled every 100 ms).
            Baseline, same run, same backlog (a copy of the file), fresh broker and database:
            the agent with the order it had before, every reading sealed and sent oldest first.
            Both drains end with an exactness check (rows == backlog + live readings taken).
3. rss      ``python -m agent run`` as a child process, its buffer a third copy of the backlog,
            fed ``--rss-rate`` readings/s over UDP (a ``senml-udp`` source: 10 channels, packs
            of 100 records) while it drains to the collector; VmRSS every 2 s for
            ``--rss-minutes``; start / peak / end and the slope after the first minute.

``--lock PATH`` holds an exclusive ``flock`` on PATH around the two drains, then (released in
between) around the RSS run; the fill runs outside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from ingest import with_db  # bench/ingest.py (same directory)
from paho.mqtt.enums import CallbackAPIVersion

from agent.buffer import SqliteBuffer
from agent.buffer_port import BufferLimits, FullPolicy, SealedBatch
from agent.clock import SystemClock, to_ms
from agent.config import AgentConfig, parse_config
from agent.protocol import Kind, Reading, batch_from_readings, encode_batch, readings_topic
from agent.publisher import MqttPublisher
from agent.runner import Agent
from collector.embedded.broker import MqttBroker, free_port
from collector.embedded.postgres import EmbeddedPostgres
from collector.storage.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "outage-gw"
GB = 1_000_000_000


def meter(i: int) -> str:
    return f"ch{i}"


def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


# ---------------------------------------------------------------- 1. fill


async def fill(path: Path, channels: int, seconds: int, end_ms: int) -> tuple[int, float]:
    """(readings appended, seconds taken): 1 Hz per channel, ending at ``end_ms``."""
    buf = await SqliteBuffer.open(path, device_id=DEVICE, now_ms=end_ms,
                                  limits=BufferLimits(None, GB, FullPolicy.REFUSE_NEW))
    t = time.perf_counter()
    start_ms = end_ms - seconds * 1000
    n = 0
    try:
        for hour in range(0, seconds, 3600):
            secs = np.arange(hour, min(seconds, hour + 3600), dtype=np.int64)
            rows = [Reading(meter(c), "energy_import", "kWh", Kind.CUMULATIVE,
                            int(start_ms + s * 1000), round(1000.0 + c + s * 0.0005, 4))
                    for s in secs.tolist() for c in range(channels)]
            await buf.append(rows)
            n += len(rows)
    finally:
        await buf.close()
    return n, time.perf_counter() - t


def naive_bytes_per_reading(path: Path, channels: int, seconds: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE readings(id INTEGER PRIMARY KEY, meter TEXT, metric TEXT,"
               " unit TEXT, kind TEXT, ts_ms INTEGER, value REAL)")
    db.execute("BEGIN")
    base = 1_780_000_000_000
    db.executemany("INSERT INTO readings(meter, metric, unit, kind, ts_ms, value)"
                   " VALUES (?, ?, ?, ?, ?, ?)",
                   ((meter(c), "energy_import", "kWh", "cumulative", base + s * 1000,
                     round(1000.0 + c + s * 0.0005, 4))
                    for s in range(seconds) for c in range(channels)))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return file_bytes(path) / (channels * seconds)


# ---------------------------------------------------------------- 2. drain


class LiveMeters:
    """The same channels, read once a second with the current time (the live readings)."""

    def __init__(self, channels: int) -> None:
        self._channels = channels
        self.taken: list[int] = []  # timestamps (ms) taken, once per poll

    @property
    def name(self) -> str:
        return "live"

    @property
    def interval_s(self) -> float:
        return 1.0

    async def read(self, now: datetime) -> Sequence[Reading]:
        ts = to_ms(now)
        self.taken.append(ts)
        return [Reading(meter(c), "energy_import", "kWh", Kind.CUMULATIVE, ts,
                        round(2000.0 + c + ts / 1e6, 4)) for c in range(self._channels)]

    async def close(self) -> None:
        return None


class OldestFirstAgent(Agent):
    """Baseline: the order the agent had before live lanes, every reading sealed oldest first
    (and so sent in seq order behind the backlog)."""

    async def _seal_next(self, room: int, final: bool) -> list[SealedBatch]:
        bc = self.cfg.batch
        due = final or (self._oldest_mono is not None and
                        self.clock.monotonic() - self._oldest_mono >= bc.max_age_s)
        if self.buffer.unbatched >= bc.max_readings or (due and self.buffer.unbatched > 0):
            sealed = await self.buffer.seal(bc.max_readings, self._now_ms(), max_batches=room)
            if self.buffer.unbatched == 0:
                self._oldest_mono = None
            return sealed
        return []


def agent_config(buffer: Path, broker_url: str, extra: dict[str, object] | None = None,
                 ) -> AgentConfig:
    return parse_config({
        "device_id": DEVICE, "status_interval_s": 3600, "shutdown_timeout_s": 30,
        "broker": {"url": broker_url},
        "buffer": {"path": str(buffer), "max_readings": None, "max_bytes": GB,
                   "policy": "refuse_new"},
        "batch": {"max_readings": 1000, "max_age_s": 1.0, "in_flight": 8, "window": 32},
        **(extra or {}),
    })


def start_collector(db: str, mqtt_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true",  # unenrolled
           "TALLY_DATABASE_URL": db, "TALLY_MQTT_URL": mqtt_url,
           "TALLY_MQTT_CLIENT_ID": f"outage-collector-{uuid.uuid4().hex[:8]}",
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "collector", "--log-level", "WARNING", "run",
                             "--no-api"], cwd=ROOT, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def wait_consuming(mqtt_url: str, db: str) -> None:
    """Publish a warm-up batch (another device) until the collector has stored it: batches sent
    before the collector's session exists would wait for a re-send."""
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"warm-{uuid.uuid4().hex[:6]}")
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    now = to_ms(SystemClock().now())
    payload = encode_batch(batch_from_readings("warmup", 0, now, "bench", [
        Reading("m", "energy_import", "kWh", Kind.CUMULATIVE, now, 1.0)]))
    try:
        for _ in range(300):
            client.publish(readings_topic("warmup"), payload, qos=1).wait_for_publish(5)
            time.sleep(0.3)
            with psycopg.connect(db) as conn:
                row = conn.execute("SELECT count(*) FROM batches").fetchone()
            if row and int(row[0]) >= 1:
                return
        raise SystemExit("collector did not start consuming")
    finally:
        client.disconnect()
        client.loop_stop()


class CommitWatcher(threading.Thread):
    """Records when each new reading of one series becomes visible in PostgreSQL."""

    def __init__(self, db: str, meter_name: str, floor_s: float) -> None:
        super().__init__(daemon=True)
        self._db, self._meter = db, meter_name
        self.floor_s = floor_s  # only readings after this (s): the live ones
        self.seen: dict[int, float] = {}  # ts (ms) -> wall time first seen
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self._db, autocommit=True) as conn:
            sid = None
            while sid is None and not self.stop.is_set():
                row = conn.execute("SELECT series_id FROM series WHERE device_id = %s"
                                   " AND meter = %s", (DEVICE, self._meter)).fetchone()
                sid = row[0] if row else None
                time.sleep(0.1)
            after = 0.0
            while not self.stop.is_set():
                now = time.time()
                for (ts,) in conn.execute(
                    "SELECT extract(epoch FROM ts)::float8 FROM readings"
                    " WHERE series_id = %s AND ts > to_timestamp(%s) ORDER BY ts",
                    (sid, max(after, self.floor_s)),
                ):
                    self.seen.setdefault(round(ts * 1000), now)
                    after = max(after, ts)
                time.sleep(0.1)


async def drain(mode: str, buffer: Path, pg_server: str, work: Path, channels: int,
                backlog: int) -> dict[str, float]:
    name = f"tally_outage_{mode}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = with_db(pg_server, name)
    broker = MqttBroker(work / f"broker-{mode}")
    collector = None
    try:
        migrate(db, use_timescale=False)
        url = broker.start()
        collector = start_collector(db, url, work / "collector.log")
        wait_consuming(url, db)
        cfg = agent_config(buffer, url)
        clock = SystemClock()
        buf = await SqliteBuffer.open(buffer, device_id=DEVICE, now_ms=to_ms(clock.now()),
                                      limits=cfg.buffer.limits())
        pub = MqttPublisher(client_id=DEVICE, broker=cfg.broker,
                            max_in_flight=cfg.batch.in_flight + 4)
        live = LiveMeters(channels)
        cls = Agent if mode == "live-first" else OldestFirstAgent
        agent = cls(cfg, buffer=buf, publisher=pub, sources=[live], clock=clock)
        t_start = time.time()
        watcher = CommitWatcher(db, meter(0), t_start - 0.5)
        watcher.start()
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        t0 = time.perf_counter()
        while True:
            await asyncio.sleep(0.5)
            oldest = (await buf.stats()).oldest_ts_ms
            if oldest is None or oldest >= int(t_start * 1000):
                break
            if task.done():
                raise SystemExit(f"agent stopped during the drain: {task.exception()}")
            if time.perf_counter() - t0 > 1800:
                raise SystemExit("drain did not finish in 30 minutes")
        drain_s = time.perf_counter() - t0
        t_end = time.time()
        await asyncio.sleep(3.0)  # the last live readings of the drain reach the database
        stop.set()
        lost = await asyncio.wait_for(task, 60)
        # what the shutdown budget did not see confirmed stays in the file for the next start
        after = await SqliteBuffer.open(buffer, device_id=DEVICE, now_ms=to_ms(clock.now()))
        left = (await after.stats()).depth
        await after.close()
        watcher.stop.set()
        watcher.join(5)
        during = [ts for ts in live.taken if ts / 1000 <= t_end]
        lat = sorted(watcher.seen[ts] - ts / 1000 for ts in during if ts in watcher.seen)
        missing = len(during) - len(lat)
        with psycopg.connect(db) as conn:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
            rows = int(row[0]) if row else 0
            row = conn.execute("SELECT coalesce(sum(reading_count), 0) FROM batches").fetchone()
            in_batches = int(row[0]) if row else 0
        # + the warm-up reading, less what is still buffered
        expected = backlog + len(live.taken) * channels + 1 - left
        return {
            "drain_s": drain_s, "speedup": 0.0, "rate": backlog / drain_s,
            "live_n": float(len(lat)), "live_missing": float(missing),
            "live_p50_s": statistics.median(lat) if lat else float("nan"),
            "live_p99_s": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
            "live_max_s": lat[-1] if lat else float("nan"),
            "rows": float(rows), "in_batches": float(in_batches), "expected": float(expected),
            "left_in_buffer": float(left), "lost_at_edge": float(lost),
        }
    finally:
        if collector is not None:
            collector.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                collector.wait(30)
        broker.stop()
        with contextlib.suppress(psycopg.Error), psycopg.connect(pg_server,
                                                                  autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------- 3. rss


def anon_mb(pid: int) -> float:
    """RssAnon: the process's own resident memory (RSS less shared libraries and files)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise OSError(f"no RssAnon for pid {pid}")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise OSError(f"no VmRSS for pid {pid}")


def udp_feeder(port: int, rate: int, stop: threading.Event) -> Iterator[int]:
    """Send ``rate`` readings/s as SenML packs of 100 records (10 channels × 10 samples)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    packs_per_s = max(1, rate // 100)
    t0 = time.time()
    k = 0
    while not stop.is_set():
        due = t0 + k / packs_per_s
        if due > time.time():
            time.sleep(due - time.time())
        t = round(t0 + k / packs_per_s, 3)
        records: list[dict[str, object]] = []
        for j in range(10):
            for c in range(10):
                rec: dict[str, object] = {"n": f"c{c}", "u": "Wh",
                                          "s": round(k * 10 + j + c * 1e6, 3),
                                          "t": round(j / (10 * packs_per_s), 4)}
                if not records:
                    rec = {"bn": "gw:", "bt": t, **rec}
                records.append(rec)
        sock.sendto(json.dumps(records, separators=(",", ":")).encode(), ("127.0.0.1", port))
        k += 1
        yield k * 100
    sock.close()


def rss_run(buffer: Path, pg_server: str, work: Path, minutes: float, rate: int,
            ) -> dict[str, float]:
    name = f"tally_outage_rss_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = with_db(pg_server, name)
    broker = MqttBroker(work / "broker-rss")
    collector = agent = None
    stop = threading.Event()
    try:
        migrate(db, use_timescale=False)
        url = broker.start()
        collector = start_collector(db, url, work / "collector.log")
        wait_consuming(url, db)
        port = free_port()
        cfg = work / "agent.toml"
        cfg.write_text(
            f'device_id = "{DEVICE}"\nstatus_interval_s = 60\nshutdown_timeout_s = 30\n'
            f'[broker]\nurl = "{url}"\n'
            f'[buffer]\npath = "{buffer}"\nmax_bytes = {GB}\npolicy = "refuse_new"\n'
            f'[batch]\nmax_readings = 1000\nmax_age_s = 1.0\n'
            f'[[sources]]\ntype = "senml-udp"\nname = "gw"\ninterval_s = 1.0\n'
            f'host = "127.0.0.1"\nport = {port}\n', encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        agent = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(cfg),
                                  "--log-level", "WARNING"], cwd=ROOT, env=env,
                                 stdout=(work / "agent.log").open("wb"),
                                 stderr=subprocess.STDOUT)
        time.sleep(3.0)
        sent = [0]

        def feed() -> None:
            for n in udp_feeder(port, rate, stop):
                sent[0] = n

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        samples: list[tuple[float, float]] = []
        anon: list[float] = []
        t0 = time.time()
        print("   t_s  rss_MB  anon_MB  readings_sent", flush=True)
        while time.time() - t0 < minutes * 60:
            if agent.poll() is not None:
                raise SystemExit(f"agent exited ({agent.returncode}); see {work}/agent.log")
            samples.append((time.time() - t0, rss_mb(agent.pid)))
            anon.append(anon_mb(agent.pid))
            if len(samples) % 15 == 1:
                print(f"{samples[-1][0]:>6.0f}  {samples[-1][1]:>6.1f}  {anon[-1]:>7.1f}"
                      f"  {sent[0]:>13,}",
                      flush=True)
            time.sleep(2.0)
        stop.set()
        feeder.join(5)
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(60)
        tail = [(t, r) for t, r in samples if t >= 60]
        slope = float(np.polyfit([t / 3600 for t, _ in tail], [r for _, r in tail], 1)[0]) \
            if len(tail) > 2 else float("nan")
        return {"start": samples[0][1], "peak": max(r for _, r in samples),
                "end": samples[-1][1], "slope_mb_h": slope, "sent": float(sent[0]),
                "seconds": samples[-1][0], "exit": float(code), "anon_start": anon[0],
                "anon_peak": max(anon), "anon_end": anon[-1]}
    finally:
        stop.set()
        if agent is not None and agent.poll() is None:
            agent.kill()
        if collector is not None:
            collector.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                collector.wait(30)
        broker.stop()
        with contextlib.suppress(psycopg.Error), psycopg.connect(pg_server,
                                                                  autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------- main


@contextlib.contextmanager
def locked(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with open(path, "a+b") as f:
        t = time.time()
        fcntl.flock(f, fcntl.LOCK_EX)
        print(f"(lock {path} taken after {time.time() - t:.0f} s; load {os.getloadavg()})",
              flush=True)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--rss-minutes", type=float, default=5.0, help="0 skips the RSS run")
    ap.add_argument("--rss-rate", type=int, default=1000, help="readings/s fed to the agent")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--rss-only", action="store_true", help="fill, then only the RSS run")
    ap.add_argument("--lock", default=None, help="flock this file around the timed drains")
    args = ap.parse_args()
    # SIGTERM and SIGINT (even when a background shell ignored it) run the clean-up below
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    seconds = int(args.days * 86400)
    work = Path(tempfile.mkdtemp(prefix="tally-outage-"))
    pg = EmbeddedPostgres(work / "pg", cleanup=True)
    try:
        server = pg.start()
        path = work / "buffer.db"
        end_ms = to_ms(SystemClock().now())
        n, fill_s = await fill(path, args.channels, seconds, end_ms)
        size = file_bytes(path)
        naive = naive_bytes_per_reading(work / "naive.db", args.channels, min(seconds, 86400))
        print(f"fill: {n:,} readings ({args.channels} channels × 1 Hz × {args.days:g} days) in"
              f" {fill_s:.1f} s; buffer on disk {size / 1e6:,.1f} MB (db + WAL + shm) ="
              f" {size / n:.1f} B/reading (limit {GB / 1e6:,.0f} MB: "
              f"{'met' if size <= GB else 'NOT met'})")
        print(f"naive one row per reading: {naive:.1f} B/reading → {naive * n / 1e6:,.0f} MB"
              f" for the same readings ({naive / (size / n):.1f}x)", flush=True)
        copies = {m: work / f"buffer-{m}.db" for m in ("oldest-first", "rss")}
        for p in copies.values():
            shutil.copyfile(path, p)
        results = {}
        with locked(None if args.rss_only else args.lock):
            print(f"load before the drains: {os.getloadavg()}", flush=True)
            modes = [] if args.rss_only else [("live-first", path)]
            if not args.skip_baseline and not args.rss_only:
                modes.append(("oldest-first", copies["oldest-first"]))
            for mode, p in modes:
                r = await drain(mode, p, server, work, args.channels, n)
                r["speedup"] = seconds / r["drain_s"]
                results[mode] = r
                exact = r["rows"] == r["expected"] == r["in_batches"]
                print(f"drain {mode:>12}: {n:,} readings in {r['drain_s']:.1f} s ="
                      f" {r['rate']:,.0f} readings/s = {r['speedup']:,.0f}× real time;"
                      f" live readings → PostgreSQL p50 {r['live_p50_s']:.2f} s,"
                      f" p99 {r['live_p99_s']:.2f} s, max {r['live_max_s']:.2f} s"
                      f" ({r['live_n']:.0f} readings of ch0, {r['live_missing']:.0f} not seen);"
                      f" rows {r['rows']:,.0f} = expected {r['expected']:,.0f}"
                      f" (still buffered after the stop: {r['left_in_buffer']:,.0f}; lost at the"
                      f" edge: {r['lost_at_edge']:,.0f}):"
                      f" {'exact' if exact else 'MISMATCH'}",
                      flush=True)
            print(f"load after the drains: {os.getloadavg()}", flush=True)
        if args.rss_minutes > 0:
            os.remove(copies["oldest-first"])
            with locked(args.lock):
                load0 = os.getloadavg()
                rss = rss_run(copies["rss"], server, work, args.rss_minutes, args.rss_rate)
                print(f"load before / after the RSS run: {load0} / {os.getloadavg()}")
            print(f"agent RSS at {args.rss_rate:,} readings/s with a {n:,}-reading backlog, "
                  f"{rss['seconds'] / 60:.1f} min: start {rss['start']:.1f} MB, peak"
                  f" {rss['peak']:.1f} MB, end {rss['end']:.1f} MB, slope after 1 min"
                  f" {rss['slope_mb_h']:+.1f} MB/h; {rss['sent']:,.0f} readings fed; exit"
                  f" {rss['exit']:.0f}; anonymous (own) memory start {rss['anon_start']:.1f} MB,"
                  f" peak {rss['anon_peak']:.1f} MB, end {rss['anon_end']:.1f} MB")
        if args.rss_only:
            return 0
        live, base = results["live-first"], results.get("oldest-first")
        print(json.dumps({"readings": n, "bytes": size, "bytes_per_reading": round(size / n, 1),
                          "naive_bytes_per_reading": round(naive, 1),
                          **{f"{m}_{k}": round(v, 3) for m, r in results.items()
                             for k, v in r.items()}}))
        base_txt = (f"baseline={base['live_p99_s']:.2f} s live p99 oldest-first"
                    f" ratio={base['live_p99_s'] / live['live_p99_s']:.0f}x" if base else "")
        print(f"RESULT name=agent_outage figure={live['live_p99_s']:.2f} s live p99 during a"
              f" {live['speedup']:,.0f}x-real-time drain {base_txt}"
              f" bytes={size / n:.1f}B/reading naive={naive:.1f}B/reading")
        ok = all(r["rows"] == r["expected"] == r["in_batches"] for r in results.values())
        return 0 if ok and size <= GB else 1
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
