"""A simulated fleet through the real pipeline, checked by reconciliation.

    python3 dev.py bench fleet [--devices 10000] [--meters 2] [--factor 30] [--poll-s 900/factor]
                               [--duration-s 300] [--shards 4] [--sqlite-threads 16]
                               [--batch-age-s 5] [--database-url postgresql://…/test]

Starts a private Mosquitto (free port) and a ``tally-collector run --no-api`` process on a fresh
database, then runs ``--devices`` simulated agents in ``--shards`` processes (one asyncio loop
each, ~4 file descriptors per agent) (``agent.fleet``: real ``SqliteBuffer``, batching,
``MqttPublisher``, confirmation; household meters with daily and seasonal profiles; 10 % of
devices each with a clock jump, a meter reset, a rollover, an agent outage). The buffers of a
process share ``--sqlite-threads`` SQLite threads (``agent.sqlite_threads``; 0: a thread per
agent, as a deployed agent has). By default a meter is read every 15 simulated minutes, with
time running ``--factor`` times faster than real. After ``--duration-s`` every agent stops
cleanly; the run waits until the collector stored everything and runs reconciliation.

Figures: readings/s sustained end to end, the drain lag after the stop, peak RSS and CPU of the
fleet processes (also per 1,000 polls, start-up included: a figure load does not move much)
and of the collector, and the reconciliation totals. Baseline (same run): the
rate such a fleet needs in real life (devices × meters / 900 s). RESULT: figure = sustained
readings/s, baseline = the real-life need, ratio = headroom. Exit 1 unless every reading the
meters produced is stored once and reconciliation is clean.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from agent.fleet.plan import DevicePlan, FleetSpec, plan_fleet
from agent.fleet.simulator import FleetRun, run_fleet
from collector.embedded.broker import MqttBroker
from collector.reconcile.gather import reconcile
from collector.reconcile.render import as_table
from collector.storage.database import open_pool
from collector.storage.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]


def _db(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


def _prepare_session(url: str, client_id: str) -> None:
    p = urlsplit(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.on_connect = lambda client, *a: client.subscribe(
        [("tally/v1/+/readings", 1), ("tally/v1/+/status", 1)])
    c.connect(p.hostname or "127.0.0.1", p.port or 1883)
    c.loop_start()
    try:
        if not done.wait(10):
            raise SystemExit("could not create the collector's session")
    finally:
        c.disconnect()
        c.loop_stop()


def _scalar(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


_Job = tuple[list[DevicePlan], str, Path, float, float, float, float, float, int | None]


def _shard(job: _Job) -> FleetRun:
    plans, url, work, factor, duration_s, status_s, batch_age_s, ramp_s, threads = job
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # ~5 descriptors per agent
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, hard), hard))
    run = asyncio.run(run_fleet(
        plans, mqtt_url=url, workdir=work, start=datetime(2026, 1, 10, tzinfo=UTC),
        factor=factor, duration_s=duration_s, status_s=status_s, batch_age_s=batch_age_s,
        ramp_s=ramp_s, sqlite_threads=threads))
    run.errors = run.errors[:20]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    run.cpu_s = usage.ru_utime + usage.ru_stime
    run.peak_rss_mb = usage.ru_maxrss / 1024
    return run


def _proc_usage(pid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (MB) of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next((int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
                .splitlines() if line.startswith("VmHWM:")), 0)
    return cpu, hwm / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--meters", type=int, default=2)
    ap.add_argument("--factor", type=float, default=30.0,
                    help="simulated time runs this many times faster than real time")
    ap.add_argument("--poll-s", type=float, default=None,
                    help="real seconds between readings of a meter (default: 15 simulated "
                    "minutes, 900 / factor)")
    ap.add_argument("--duration-s", type=float, default=300.0)
    ap.add_argument("--status-s", type=float, default=60.0)
    ap.add_argument("--batch-age-s", type=float, default=5.0,
                    help="real seconds a reading may wait to be batched (the batcher looks "
                    "every 0.25 s while readings wait: short ages keep a big fleet quiet)")
    ap.add_argument("--shards", type=int, default=4,
                    help="processes to spread the agents over (one asyncio loop each; ~4 file "
                    "descriptors per agent)")
    ap.add_argument("--sqlite-threads", type=int, default=16,
                    help="SQLite threads shared by the buffers of a process (0: one thread "
                    "per agent, aiosqlite's default)")
    ap.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (database, files) too
    if args.poll_s is None:
        args.poll_s = 900.0 / args.factor
    threads = args.sqlite_threads or None
    need = args.devices * args.meters / 900  # readings/s such a fleet makes in real life

    work = Path(tempfile.mkdtemp(prefix="tally-fleet-"))
    dbname = f"tally_fleet_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    db = _db(args.database_url, dbname)
    broker = MqttBroker(work / "broker")
    collector: subprocess.Popen[bytes] | None = None
    try:
        migrate(db)
        broker.start()
        cid = f"tally-fleet-{uuid.uuid4().hex[:6]}"
        _prepare_session(broker.url, cid)
        env = {**os.environ, "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true",  # unenrolled
               "TALLY_DATABASE_URL": db, "TALLY_MQTT_URL": broker.url,
               "TALLY_MQTT_CLIENT_ID": cid, "TALLY_API_ENABLED": "false"}
        collector = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--no-api"], env=env,
            stdout=subprocess.DEVNULL, stderr=open(work / "collector.log", "wb"))  # noqa: SIM115
        spec = FleetSpec(devices=args.devices, prefix=f"fl{uuid.uuid4().hex[:4]}",
                         meters_per_device=args.meters, poll_s=args.poll_s,
                         duration_s=args.duration_s)
        plans = plan_fleet(spec)
        t0 = time.monotonic()
        ramp = min(args.duration_s / 4, 60.0)
        jobs = [(plans[k::args.shards], broker.url, work / "agents", args.factor,
                 args.duration_s, args.status_s, args.batch_age_s, ramp, threads)
                for k in range(args.shards)]
        with multiprocessing.get_context("spawn").Pool(args.shards) as procs:
            runs = procs.map(_shard, jobs)
        run = FleetRun(devices=args.devices, wall_s=max(r.wall_s for r in runs))
        for r in runs:
            for name in ("polls", "restarts", "jumps", "resets", "rollovers", "lost_at_edge",
                         "cpu_s", "peak_rss_mb"):
                setattr(run, name, getattr(run, name) + getattr(r, name))
            run.errors += r.errors
        stopped = time.monotonic()
        deadline = stopped + 600
        stored, last, still = 0, -1, stopped
        while time.monotonic() < deadline:  # every agent has stopped: only queues drain now
            stored = _scalar(db, "SELECT sum(readings) FROM device_ingest")
            if stored >= run.polls - run.lost_at_edge:
                break
            if stored != last:
                last, still = stored, time.monotonic()
            elif time.monotonic() - still > 15:  # the rest waits in agents' buffers
                break
            time.sleep(1)
        drained = time.monotonic()
        farewell_by = time.monotonic() + 60  # every agent has stopped: its farewell is sent
        while time.monotonic() < min(deadline, farewell_by) and _scalar(
                db, "SELECT count(*) FROM device_status WHERE state = 'offline'") < args.devices:
            time.sleep(1)
        left = _scalar(db, "SELECT sum((payload -> 'buffer' ->> 'depth')::bigint) "
                           "FROM device_status WHERE state = 'offline'")
        collector_cpu, collector_rss = _proc_usage(collector.pid)
        pool = open_pool(db, min_size=1, max_size=1)
        try:
            fleet = reconcile(pool)
        finally:
            pool.close()
        print(as_table(fleet, only_problems=True).splitlines()[-1])
        elapsed = drained - t0
        rate = stored / elapsed
        print(f"devices={args.devices} meters/device={args.meters} poll={args.poll_s:g}s "
              f"(= {args.poll_s * args.factor / 60:g} simulated min) factor={args.factor:g} "
              f"duration={args.duration_s:g}s shards={args.shards} "
              f"sqlite_threads/shard={threads or 'one per agent'}")
        print(f"wanted={args.devices * args.meters / args.poll_s:.0f} readings/s = "
              f"{args.devices * args.meters / args.poll_s / need:.0f}x the real-life need "
              f"of {need:.1f} readings/s")
        print(f"meters' readings={run.polls} stored={stored} restarts={run.restarts} "
              f"jumps={run.jumps} resets={run.resets} rollovers={run.rollovers} "
              f"errors={len(run.errors)} agents' lost_at_edge={run.lost_at_edge} "
              f"left in agents' buffers at their stop={left}")
        print(f"fleet wall={run.wall_s:.1f}s drain after stop={drained - stopped:.1f}s "
              f"sustained={rate:.0f} readings/s")
        print(f"fleet processes ({args.shards}): peak RSS {run.peak_rss_mb:.0f} MB "
              f"({run.peak_rss_mb * 1024 / args.devices:.0f} KB/agent), CPU {run.cpu_s:.0f} s "
              f"= {run.cpu_s / run.wall_s:.2f} cores = "
              f"{run.cpu_s * 1000 / max(run.polls, 1):.2f} CPU-s per 1,000 polls; "
              f"collector: peak RSS "
              f"{collector_rss:.0f} MB, CPU {collector_cpu:.0f} s")
        print(f"reconcile: lost={fleet.total('lost')}"
              f" lost_batches={fleet.total('lost_batches')}"
              f" duplicated={fleet.total('duplicated')} conflicting="
              f"{fleet.total('conflicting')} ok={fleet.ok}")
        for e in run.errors[:5]:
            print("error:", e)
        print(f"RESULT fleet_readings_per_s={rate:.0f} baseline_real_life_need={need:.1f} "
              f"ratio={rate / need:.1f} lost={fleet.total('lost')} "
              f"duplicated={fleet.total('duplicated')}")
        return 0 if fleet.ok and not run.errors and stored == run.polls else 1
    finally:
        if collector is not None:
            collector.terminate()
            collector.wait(30)
        broker.stop()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
