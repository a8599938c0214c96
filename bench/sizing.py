"""Sizing: CPU per reading in the collector, PostgreSQL and the broker, and disk per reading.

    python3 dev.py bench sizing [--readings 600000] [--devices 2000]

Runs the real pipeline (a private Mosquitto, a ``tally-collector run --no-api`` process with
its usage refresh, and a PRIVATE PostgreSQL 15 cluster from the machine's binaries, so that every
CPU-second of the database, background writers included, is counted) and publishes three
workloads from separate processes (whose CPU is not counted):

1. ``bulk``    batches of 1,000 readings (a gateway or an agent draining a backlog);
2. ``device``  batches of 8 readings from ``--devices`` devices (two meters, four readings each:
               an agent that flushes every hour of 15-minute readings, or every few seconds of
               a fast meter) — what a live fleet sends;
3. ``naive``   one reading per message (the per-message cost every reading would pay without
               batching): the baseline.

For each: readings per CPU-second of the collector, of PostgreSQL and of the broker, and
messages per CPU-second. Then the disk cost per reading (``readings``), per 15-minute usage row
and per packed usage day, and the derived sizing table: devices per collector core,
readings/s per PostgreSQL core and disk per device per year for reference devices.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.protocol import Batch, Kind, Series, encode_batch, readings_topic  # noqa: E402
from collector.embedded.broker import MqttBroker, free_port  # noqa: E402
from collector.storage.migrate import migrate  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
YEAR_S = 365 * 86_400


# ---------------------------------------------------------------- a private PostgreSQL 15


class PrivatePostgres:
    """initdb + pg_ctl of the machine's PostgreSQL 15, run as the ``postgres`` user."""

    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.port = free_port()

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *cmd], check=True, stdout=subprocess.DEVNULL)

    def start(self) -> str:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.data, "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                  str(self.data / "log"), "-o",
                  f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def postmaster(self) -> psutil.Process:
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return psutil.Process(pid)

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


def cluster_cpu(postmaster: psutil.Process) -> float:
    """CPU-seconds of the whole cluster: live processes plus the backends already reaped."""
    t = postmaster.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in postmaster.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += c.user + c.system
    return float(total)


def process_cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


# ---------------------------------------------------------------- publishers (child processes)


def device_batch(device: str, seq: int, per_batch: int, base_ms: int, step_s: int) -> Batch:
    """``per_batch`` readings ``step_s`` apart over two meters of one device (one meter for a
    single reading)."""
    meters = 1 if per_batch == 1 else 2
    n = per_batch // meters
    rng = np.random.default_rng(seq)
    ts = base_ms + (seq * n + np.arange(n, dtype=np.int64)) * step_s * 1000
    series = tuple(
        Series(f"m{m}", "energy", "kWh", Kind.CUMULATIVE, ts,
               np.round(1000.0 + seq + np.cumsum(rng.random(n)), 3))
        for m in range(meters))
    return Batch(device, seq, base_ms, "sizing", series)


def publisher(url: str, devices: list[str], batches: int, per_batch: int, base_ms: int,
              step_s: int, start: object) -> None:
    payloads = [(readings_topic(d), encode_batch(device_batch(d, s, per_batch, base_ms, step_s)))
                for s in range(batches) for d in devices]
    parts = urlsplit(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"size-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=60)
    client.loop_start()
    start.wait()  # type: ignore[attr-defined]
    infos = [client.publish(t, p, qos=1) for t, p in payloads]
    for info in infos:
        info.wait_for_publish(300)
    client.disconnect()
    client.loop_stop()


# ---------------------------------------------------------------- measurement


@dataclass(frozen=True)
class Phase:
    name: str
    readings: int
    messages: int
    wall_s: float
    collector_cpu: float
    postgres_cpu: float
    broker_cpu: float

    def per_cpu(self, cpu: float) -> float:
        return self.readings / cpu if cpu > 0 else float("inf")


def stored(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT coalesce(sum(reading_count), 0) FROM batches").fetchone()
    return int(row[0]) if row else 0


def dirty(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM usage_dirty").fetchone()
    return int(row[0]) if row else 0


def run_phase(name: str, *, db: str, mqtt_url: str, readings: int, per_batch: int, devices: int,
              step_s: int, collector: psutil.Process, postmaster: psutil.Process,
              broker: psutil.Process, base_ms: int, prefix: str) -> Phase:
    publishers = 2
    batches = max(1, readings // (per_batch * devices))
    total = batches * devices * per_batch
    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = []
    per_pub = devices // publishers
    for p in range(publishers):
        devs = [f"{prefix}-{p}-{d}" for d in range(per_pub)]
        proc = ctx.Process(target=publisher, args=(mqtt_url, devs, batches, per_batch, base_ms,
                                                   step_s, start))
        proc.start()
        procs.append(proc)
    total = batches * per_pub * publishers * per_batch
    time.sleep(min(30.0, 1.0 + total / 300_000))  # let the publishers pre-encode
    before = stored(db)
    c0, p0, b0 = process_cpu(collector), cluster_cpu(postmaster), process_cpu(broker)
    t0 = time.perf_counter()
    start.set()
    while (got := stored(db) - before) < total:
        time.sleep(0.05)
        if time.perf_counter() - t0 > 600:
            raise SystemExit(f"{name}: {got:,} of {total:,} readings stored in 10 minutes")
    # the usage refresh is part of the cost of a reading: wait until it has caught up
    while (left := dirty(db)) > 0:
        time.sleep(0.1)
        if time.perf_counter() - t0 > 600:
            raise SystemExit(f"{name}: usage refresh still has {left} dirty ranges")
    wall = time.perf_counter() - t0
    phase = Phase(name, total, total // per_batch, wall, process_cpu(collector) - c0,
                  cluster_cpu(postmaster) - p0, process_cpu(broker) - b0)
    for proc in procs:
        proc.join(60)
    return phase


def wait_consuming(url: str, db: str, base_ms: int) -> None:
    """Re-publish one batch until the collector has stored it (it subscribes after starting)."""
    parts = urlsplit(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"size-warm-{uuid.uuid4().hex[:6]}")
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=60)
    client.loop_start()
    payload = encode_batch(device_batch("warm-0", 0, 8, base_ms, 900))
    try:
        for _ in range(200):
            client.publish(readings_topic("warm-0"), payload, qos=1).wait_for_publish(5)
            time.sleep(0.3)
            if stored(db) >= 8:
                return
        raise SystemExit("the collector did not start consuming")
    finally:
        client.disconnect()
        client.loop_stop()


TABLES = ("readings", "usage_15m", "usage_15m_daily", "batches")


def table_sizes(db: str) -> dict[str, tuple[int, int]]:
    """(rows, bytes on disk: table + indexes + TOAST, partitions included) of each table."""
    out: dict[str, tuple[int, int]] = {}
    with psycopg.connect(db) as conn:
        conn.execute("CHECKPOINT")
        for table in TABLES:
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)"
                " + pg_total_relation_size(%s::regclass) FROM pg_inherits"
                " WHERE inhparent = %s::regclass", (table, table)).fetchone()
            out[table] = (int(rows[0]) if rows else 0, int(size[0]) if size else 0)
    return out


def per_row(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
            ) -> dict[str, float]:
    """Bytes per row added between two sizings (empty partitions and index roots excluded)."""
    return {t: (after[t][1] - before[t][1]) / max(after[t][0] - before[t][0], 1) for t in TABLES}


@dataclass(frozen=True)
class Device:
    name: str
    series: int
    interval_s: float
    batch_readings: int  # readings per message it sends


REFERENCE_DEVICES = (
    Device("household meter: 2 registers, 15-min readings, hourly batches", 2, 900, 8),
    Device("commercial meter: 4 registers, 1-min readings, 5-min batches", 4, 60, 20),
    Device("industrial logger: 10 channels at 1 Hz, 10-s batches", 10, 1, 100),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=600_000, help="bulk phase readings")
    ap.add_argument("--devices", type=int, default=2000, help="devices of the device phase")
    ap.add_argument("--naive-readings", type=int, default=20_000)
    ap.add_argument("--archive-bytes", type=float, default=2.39,
                    help="bytes per archived reading (bench/archive.py, 15-min series)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tally-sizing-"))
    tmp.chmod(0o755)  # the postgres user must reach its data directory
    pg = PrivatePostgres(tmp / "pg")
    broker = MqttBroker(tmp / "broker")
    collector: subprocess.Popen[bytes] | None = None
    try:
        server = pg.start()
        db = server.rsplit("/", 1)[0] + "/sizing"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("CREATE DATABASE sizing")
        migrate(db)
        mqtt_url = broker.start()
        env = {**os.environ, "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true",
               "TALLY_DATABASE_URL": db, "TALLY_MQTT_URL": mqtt_url,
               "TALLY_MQTT_CLIENT_ID": f"sizing-{uuid.uuid4().hex[:6]}",
               "TALLY_INGEST_USAGE_REFRESH_S": "1", "PYTHONPATH": str(ROOT)}
        collector = subprocess.Popen(
            [sys.executable, "-m", "collector", "--log-level", "WARNING", "run", "--no-api"],
            cwd=ROOT, env=env, stdout=(tmp / "collector.log").open("wb"),
            stderr=subprocess.STDOUT)
        base_ms = int(time.time() * 1000) - 20 * 86_400_000
        procs = dict(collector=psutil.Process(collector.pid), postmaster=pg.postmaster(),
                     broker=psutil.Process(broker_pid(broker)))
        wait_consuming(mqtt_url, db, base_ms)
        warm = run_phase("warm-up", db=db, mqtt_url=mqtt_url, readings=20_000, per_batch=100,
                         devices=20, step_s=1, base_ms=base_ms, prefix="warm", **procs)
        del warm
        sizes_before = table_sizes(db)
        print(f"private PostgreSQL 15 on :{pg.port}; broker {mqtt_url}; "
              f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
        phases = [
            run_phase("bulk", db=db, mqtt_url=mqtt_url, readings=args.readings, per_batch=1000,
                      devices=100, step_s=1, base_ms=base_ms, prefix="bulk", **procs),
            run_phase("device", db=db, mqtt_url=mqtt_url, readings=args.devices * 8 * 10,
                      per_batch=8, devices=args.devices, step_s=900, base_ms=base_ms,
                      prefix="dev", **procs),
            run_phase("naive", db=db, mqtt_url=mqtt_url, readings=args.naive_readings,
                      per_batch=1, devices=200, step_s=60, base_ms=base_ms,
                      prefix="naive", **procs),
        ]
        print(f"\n{'workload':<8} {'readings':>9} {'msgs':>8} {'wall s':>7} "
              f"{'collector r/cpu-s':>18} {'PostgreSQL r/cpu-s':>19} {'broker r/cpu-s':>15} "
              f"{'collector msg/cpu-s':>20}")
        for ph in phases:
            print(f"{ph.name:<8} {ph.readings:>9,} {ph.messages:>8,} {ph.wall_s:>7.1f} "
                  f"{ph.per_cpu(ph.collector_cpu):>18,.0f} {ph.per_cpu(ph.postgres_cpu):>19,.0f} "
                  f"{ph.per_cpu(ph.broker_cpu):>15,.0f} "
                  f"{ph.messages / max(ph.collector_cpu, 1e-9):>20,.0f}")
        disk = per_row(sizes_before, table_sizes(db))
        print("\nbytes on disk per row: " + ", ".join(f"{k} {v:.1f}" for k, v in disk.items()))
        bulk, dev, naive = phases
        # a message costs the collector a fixed part plus a per-reading part: fit both from the
        # bulk and device phases, then price each reference device by its own batch size
        per_msg, per_reading = _fit(dev, bulk)
        pg_msg, pg_reading = _fit(dev, bulk, postgres=True)
        print(f"collector: {per_msg * 1e6:.0f} µs per message + {per_reading * 1e6:.2f} µs per "
              f"reading; PostgreSQL: {pg_msg * 1e6:.0f} µs per message + "
              f"{pg_reading * 1e6:.2f} µs per reading (incl. usage refresh)")
        print("\n| device | readings/s per device | devices per collector core | devices per "
              "PostgreSQL core | raw disk per device-year | in archive |")
        print("|---|---|---|---|---|---|")
        for d in REFERENCE_DEVICES:
            rate = d.series / d.interval_s
            msgs = rate / d.batch_readings
            c_cost = msgs * per_msg + rate * per_reading
            p_cost = msgs * pg_msg + rate * pg_reading
            per_year = rate * YEAR_S
            usage_rows = d.series * YEAR_S / 900
            raw = (per_year * disk["readings"] + usage_rows * disk["usage_15m"]
                   + d.series * 365 * disk["usage_15m_daily"]
                   + msgs * YEAR_S * disk["batches"])
            print(f"| {d.name} | {rate:.4g} | {1 / c_cost:,.0f} | {1 / p_cost:,.0f} | "
                  f"{raw / 1e6:,.1f} MB | {per_year * args.archive_bytes / 1e6:,.2f} MB |")
        figure = bulk.per_cpu(bulk.collector_cpu + bulk.postgres_cpu)
        baseline = naive.per_cpu(naive.collector_cpu + naive.postgres_cpu)
        print(f"\nRESULT name=sizing figure={figure:.0f} readings per CPU-second (collector + "
              f"PostgreSQL, batches of 1000) baseline={baseline:.0f} readings per CPU-second "
              f"(one reading per message) ratio={figure / baseline:.1f}x")
    finally:
        if collector is not None:
            collector.terminate()
            collector.wait(30)
        broker.stop()
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            pg.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _fit(small: Phase, large: Phase, *, postgres: bool = False) -> tuple[float, float]:
    """(seconds per message, seconds per reading) solving cpu = m·msgs + r·readings."""
    a = np.array([[small.messages, small.readings], [large.messages, large.readings]], float)
    cpu = [small.postgres_cpu if postgres else small.collector_cpu,
           large.postgres_cpu if postgres else large.collector_cpu]
    m, r = np.linalg.solve(a, np.array(cpu))
    return max(float(m), 0.0), max(float(r), 1e-9)


def broker_pid(broker: MqttBroker) -> int:
    return int((broker.data_dir / "broker.pid").read_text(encoding="utf-8").split()[0])


if __name__ == "__main__":
    raise SystemExit(main())
