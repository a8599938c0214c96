"""Enrollments per second end to end, on the deployed broker configuration.

    python3 dev.py bench enroll [--devices 300] [--workers 8] [--naive-devices 20]

Needs ``DATABASE_URL`` (an admin URL: a scratch database is created and dropped). Starts a
private Mosquitto with deploy/mosquitto/mosquitto.conf (dynamic security, own ports), the
collector's API (uvicorn, real HTTP) with the dynamic-security adapter, and the collector's
ingest (registered devices only). Enrollment codes are created beforehand (not timed). Timed,
per device, from ``--workers`` threads: ``POST /enroll`` (code redeemed: device registered,
client + role created at the broker, config published) → MQTT connect with the returned
credentials → one batch published (PUBACK); the clock stops when the collector has committed
the first batch of every device (credentials live and first batch accepted).

Baseline (same run, same broker and collector): the obvious operator script, one device at a
time over ``--naive-devices``: the registry row written, then ``mosquitto_ctrl`` run once per
change (createRole, one addRoleACL per topic, createClient, addClientRole), then the same
connect, publish and wait for the commit.

The final ``RESULT`` line: figure = enrollments/s, baseline = naive enrollments/s,
ratio = figure / baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import paho.mqtt.client as mqtt
import psycopg
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from agent.protocol import encode_batch, readings_topic
from collector.api.app import create_app
from collector.config import load_config
from collector.devices import dynsec
from collector.devices.broker_dynsec import DynsecBrokerAccess, DynsecSettings
from collector.devices.guessing import AttemptLimiter
from collector.devices.model import Device, DeviceState, MeterSpec
from collector.devices.service import DeviceService, ServiceSettings
from collector.embedded.broker import free_port, wait_for_port
from collector.runner import Collector
from collector.storage.database import open_pool
from collector.storage.devices_store import DeviceStore
from collector.storage.migrate import migrate

# The private broker with the deployed configuration is the tests' own helper; bench/ is first
# on sys.path when run as a script, so the repository root is added for it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.collector.ingest.synthetic import make_batch
from tests.support.dynsec_broker import ADMIN_USER, DynsecBroker

COLLECTOR_PW = "bench-collector-secret-0123456789"
METERS = (MeterSpec("main", "simulated-energy", 60.0),)


def _now() -> datetime:
    return datetime.now(UTC)


def _db_url(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


def _publish_first_batch(port: int, device: str, password: str) -> None:
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv311)
    client.username_pw_set(device, password)
    client.on_publish = lambda *a: done.set()
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    batch = make_batch(device, 1)
    client.publish(readings_topic(device), encode_batch(batch), qos=1)
    if not done.wait(15):
        raise RuntimeError(f"no PUBACK for {device}")
    client.disconnect()
    client.loop_stop()


def _committed(db: str, devices: list[str]) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM batches WHERE device_id = ANY(%s)",
                           (devices,)).fetchone()
    return int(row[0]) if row else 0


def _wait_committed(db: str, devices: list[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while _committed(db, devices) < len(devices):
        if time.monotonic() > deadline:
            raise RuntimeError("the collector did not commit every first batch")
        time.sleep(0.005)


def run_figure(api: str, port: int, db: str, codes: list[str], workers: int) -> float:
    devices: list[str] = []
    lock = threading.Lock()
    spent = {"enroll": 0.0, "publish": 0.0}
    local = threading.local()  # one HTTP client per worker (building one costs ~10 ms of CPU)

    def one(code: str) -> None:
        secret = uuid.uuid4().hex + uuid.uuid4().hex
        t = time.perf_counter()
        if not hasattr(local, "http"):
            local.http = httpx.Client(timeout=30)
        r = local.http.post(f"{api}/enroll", json={"code": code, "secret": secret})
        r.raise_for_status()
        device = r.json()["device_id"]
        t2 = time.perf_counter()
        _publish_first_batch(port, device, secret)
        with lock:
            devices.append(device)
            spent["enroll"] += t2 - t
            spent["publish"] += time.perf_counter() - t2

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, codes))
    t1 = time.perf_counter()
    _wait_committed(db, devices)
    elapsed = time.perf_counter() - t0
    n = len(codes)
    print(f"  per device: POST /enroll {1000 * spent['enroll'] / n:.1f} ms, connect+publish "
          f"{1000 * spent['publish'] / n:.1f} ms; last commit {1000 * (t0 + elapsed - t1):.0f} ms"
          " after the last PUBACK")
    return n / elapsed


def run_naive(broker: DynsecBroker, store: DeviceStore, db: str, n: int) -> float:
    ctrl = [shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl", "-h", "127.0.0.1",
            "-p", str(broker.port), "-u", ADMIN_USER, "-P", broker.admin_password, "dynsec"]
    devices = [f"naive-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    t0 = time.perf_counter()
    for device in devices:
        secret = uuid.uuid4().hex + uuid.uuid4().hex
        store.register([Device(device, "bench", "bench", DeviceState.ACTIVE, METERS, 1, _now())])
        role = dynsec.role_name(device)
        steps = [["createRole", role]]
        steps += [["addRoleACL", role, "publishClientSend", t, "allow"]
                  for t in (f"tally/v1/{device}/readings", f"tally/v1/{device}/status",
                            f"tally/v1/{device}/senml")]
        steps += [["addRoleACL", role, "subscribeLiteral", t, "allow"]
                  for t in (f"tally/v1/{device}/config", f"tally/v1/{device}/ack")]
        steps += [["createClient", device, "-p", secret], ["addClientRole", device, role]]
        for step in steps:
            subprocess.run([*ctrl, *step], check=True, capture_output=True)
        _publish_first_batch(broker.port, device, secret)
        _wait_committed(db, [device])
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=300)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--naive-devices", type=int, default=20)
    args = ap.parse_args()
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"tally_bench_enroll_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = _db_url(admin, name)
    tmp = Path(tempfile.mkdtemp(prefix="tally-bench-enroll-"))
    broker = DynsecBroker(tmp)
    broker.start()
    try:
        migrate(db, use_timescale=False)
        pool = open_pool(db, min_size=2, max_size=8)
        pool.wait(10)
        access = DynsecBrokerAccess(DynsecSettings("127.0.0.1", broker.port, ADMIN_USER,
                                                   broker.admin_password))
        access.bootstrap("collector", COLLECTOR_PW)
        service = DeviceService(DeviceStore(pool), access, ServiceSettings(broker.url), _now,
                                AttemptLimiter(global_failures=10**9))
        app = create_app(pool)
        app.state.devices = service
        api_port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=api_port,
                                               log_level="warning", lifespan="off"))
        threading.Thread(target=server.run, daemon=True).start()
        wait_for_port(api_port)
        collector = Collector(load_config(None, {
            "TALLY_DATABASE_URL": db,
            "TALLY_MQTT_URL": f"mqtt://collector:{COLLECTOR_PW}@127.0.0.1:{broker.port}",
            "TALLY_MQTT_CLIENT_ID": f"bench-{uuid.uuid4().hex[:6]}",
            "TALLY_API_ENABLED": "false", "TALLY_INGEST_USAGE_REFRESH_S": "0",
        }), pool)
        collector.start()
        assert collector.consumer.wait_connected(15)
        codes = [service.create_enrollment("bench", "bench", METERS, timedelta(hours=1)).code
                 for _ in range(args.devices)]
        figure = run_figure(f"http://127.0.0.1:{api_port}", broker.port, db, codes,
                            args.workers)
        print(f"enroll end to end ({args.devices} devices, {args.workers} workers): "
              f"{figure:,.1f} enrollments/s")
        baseline = run_naive(broker, DeviceStore(pool), db, args.naive_devices)
        print(f"naive (mosquitto_ctrl per change, one at a time, {args.naive_devices} devices):"
              f" {baseline:,.1f} enrollments/s")
        collector.stop()
        server.should_exit = True
        access.close()
        pool.close()
        print(f"RESULT enroll figure={figure:.1f}/s baseline={baseline:.1f}/s "
              f"ratio={figure / baseline:.1f}")
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
