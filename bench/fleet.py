"""A simulated fleet through the real pipeline, checked by reconciliation.

    python3 dev.py bench fleet [--devices 10000] [--meters 2] [--poll-s 9] [--factor 100]
                               [--duration-s 300] [--shards 4] [--database-url postgresql://…/test]

Starts a private Mosquitto (free port) and a ``tally-collector run --no-api`` process on a fresh
database, then runs ``--devices`` simulated agents in ``--shards`` processes (one asyncio loop
each; a process needs ~5 file descriptors per agent) (``agent.fleet``: real ``SqliteBuffer``,
batching, ``MqttPublisher``, confirmation; household meters with daily and
seasonal profiles; 10 % of devices each with a clock jump, a meter reset, a rollover, an agent
outage). ``--poll-s 9 --factor 100`` is one reading per 15 simulated minutes per meter, time
running 100× faster than real. After ``--duration-s`` every agent stops cleanly; the run waits
until the collector stored everything and runs ``tally-collector reconcile``.

Figures: readings/s sustained end to end, the drain lag after the stop, this process' peak RSS,
and the reconciliation totals. Baseline (same run): the rate such a fleet needs in real life
(devices × meters / 900 s). RESULT: figure = sustained readings/s, baseline = the real-life
need, ratio = headroom.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shutil
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


def _shard(job: tuple[list[DevicePlan], str, Path, float, float, float, float, float]) -> FleetRun:
    plans, url, work, factor, duration_s, status_s, batch_age_s, ramp_s = job
    run = asyncio.run(run_fleet(
        plans, mqtt_url=url, workdir=work, start=datetime(2026, 1, 10, tzinfo=UTC),
        factor=factor, duration_s=duration_s, status_s=status_s, batch_age_s=batch_age_s,
        ramp_s=ramp_s))
    run.errors = run.errors[:20]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run.errors.append(f"#rss {rss:.0f}")
    return run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--meters", type=int, default=2)
    ap.add_argument("--poll-s", type=float, default=9.0)
    ap.add_argument("--factor", type=float, default=100.0)
    ap.add_argument("--duration-s", type=float, default=300.0)
    ap.add_argument("--status-s", type=float, default=60.0)
    ap.add_argument("--batch-age-s", type=float, default=5.0)
    ap.add_argument("--shards", type=int, default=1,
                    help="processes to spread the agents over (file descriptor limits)")
    ap.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()

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
                 args.duration_s, args.status_s, args.batch_age_s, ramp)
                for k in range(args.shards)]
        with multiprocessing.get_context("spawn").Pool(args.shards) as procs:
            runs = procs.map(_shard, jobs)
        run = FleetRun(devices=args.devices, wall_s=max(r.wall_s for r in runs))
        shard_rss = []
        for r in runs:
            for name in ("polls", "restarts", "jumps", "resets", "rollovers", "lost_at_edge"):
                setattr(run, name, getattr(run, name) + getattr(r, name))
            shard_rss += [float(e[5:]) for e in r.errors if e.startswith("#rss ")]
            run.errors += [e for e in r.errors if not e.startswith("#rss ")]
        stopped = time.monotonic()
        rss_mb = sum(shard_rss)
        deadline = stopped + 600
        stored = 0
        while time.monotonic() < deadline:
            stored = _scalar(db, "SELECT sum(readings) FROM device_ingest")
            if stored >= run.polls - run.lost_at_edge:
                break
            time.sleep(1)
        drained = time.monotonic()
        while time.monotonic() < deadline and _scalar(
                db, "SELECT count(*) FROM device_status WHERE state = 'offline'") < args.devices:
            time.sleep(1)
        pool = open_pool(db, min_size=1, max_size=1)
        try:
            fleet = reconcile(pool)
        finally:
            pool.close()
        print(as_table(fleet, only_problems=True).splitlines()[-1])
        elapsed = drained - t0
        rate = stored / elapsed
        need = args.devices * args.meters / 900
        print(f"devices={args.devices} meters/device={args.meters} poll={args.poll_s}s "
              f"factor={args.factor} duration={args.duration_s}s")
        print(f"meters' readings={run.polls} stored={stored} restarts={run.restarts} "
              f"jumps={run.jumps} resets={run.resets} rollovers={run.rollovers} "
              f"errors={len(run.errors)} agents' lost_at_edge={run.lost_at_edge}")
        print(f"fleet wall={run.wall_s:.1f}s drain after stop={drained - stopped:.1f}s "
              f"sustained={rate:.0f} readings/s peak RSS of the fleet processes="
              f"{rss_mb:.0f} MB ({args.shards} processes)")
        print(f"reconcile: lost={fleet.total('lost')}"
              f" lost_batches={fleet.total('lost_batches')}"
              f" duplicated={fleet.total('duplicated')} conflicting="
              f"{fleet.total('conflicting')} ok={fleet.ok}")
        for e in run.errors[:5]:
            print("error:", e)
        print(f"RESULT fleet_readings_per_s={rate:.0f} baseline_real_life_need={need:.1f} "
              f"ratio={rate / need:.1f} lost={fleet.total('lost')} "
              f"duplicated={fleet.total('duplicated')}")
        return 0 if fleet.ok and not run.errors else 1
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
