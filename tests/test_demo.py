"""``python -m collector.demo`` as a user runs it: readings from every simulated device arrive."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.buffer_inspect import inspect_buffer
from agent.protocol import status_topic
from collector.embedded.broker import free_port
from collector.embedded.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)


def demo(cwd: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start the demo the way ``python3 dev.py demo`` does, in ``cwd``, without TALLY_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    return subprocess.Popen(
        [sys.executable, "-m", "collector.demo", "--no-live", *args], cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def poll(pred: Callable[[], bool], proc: subprocess.Popen[str], timeout_s: float) -> bool:
    """True once ``pred`` holds; False if the demo exits or time runs out first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if pred():
                return True
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    return False


def healthy(port: int) -> bool:
    r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    return r.status_code == 200 and r.json()["database"] is True


def readings_by_device(pg_url: str) -> dict[str, int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT s.device_id, count(*) FROM readings r JOIN series s USING (series_id)"
            " GROUP BY 1"
        ).fetchall()
    return {d: int(n) for d, n in rows}


def meters_by_device(pg_url: str) -> dict[str, set[str]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT device_id, meter FROM series").fetchall()
    out: dict[str, set[str]] = {}
    for d, m in rows:
        out.setdefault(d, set()).add(m)
    return out


def forget(url: str, client_id: str, devices: list[str]) -> None:
    """Drop the demo collector's persistent session and the retained statuses it left."""
    parts = urlsplit(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        c.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        c.loop_start()
        for d in devices:
            c.publish(status_topic(d), b"", qos=1, retain=True).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()
    except (OSError, RuntimeError, ValueError):
        pass


def test_demo_with_given_servers_stores_readings_of_every_device(
    pg_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    """--duration 20 on the test's servers: API healthy, all devices' readings stored, exit 0."""
    prefix = f"dm{uuid.uuid4().hex[:6]}"
    devices = [f"{prefix}-{i:02d}" for i in (1, 2, 3)]
    port = free_port()
    cid = f"tally-demo-{prefix}"
    proc = demo(tmp_path, ["--duration", "20", "--devices", "3", "--api-port", str(port),
                           "--device-prefix", prefix, "--mqtt-url", mqtt_url,
                           "--database-url", pg_url], {"TALLY_MQTT_CLIENT_ID": cid})
    try:
        answered = poll(lambda: healthy(port), proc, 40)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        forget(mqtt_url, cid, devices)
    assert answered, "the API never answered /health"
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    counts = readings_by_device(pg_url)  # the shared broker may carry other tests' devices too
    assert all(counts.get(d, 0) >= 10 for d in devices), counts
    meters = meters_by_device(pg_url)
    assert {d: meters.get(d) for d in devices} == {d: {"energy", "water", "data"} for d in devices}
    for d in devices:
        assert inspect_buffer(tmp_path / ".tally-demo" / "agents" / d / "buffer.db").depth == 0
    assert "invoice for Demo Household" in out
    assert "kWh on 3 meters" in out


def test_demo_on_embedded_servers_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """No URLs: embedded PostgreSQL and broker; readings arrive; SIGTERM stops all, exit 0."""
    port = free_port()
    devices = ["demo-01", "demo-02", "demo-03"]
    proc = demo(tmp_path, ["--duration", "90", "--devices", "3", "--api-port", str(port)], {})

    def all_devices_reporting() -> bool:
        r = httpx.get(f"http://127.0.0.1:{port}/devices", timeout=2)
        seen = {d["device_id"]: d["readings"] for d in r.json()}
        return all(seen.get(d, 0) > 0 for d in devices)

    try:
        reporting = poll(all_devices_reporting, proc, 60)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert reporting, "readings of every device never showed up in the API"
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    pg_dir = tmp_path / ".tally-demo" / "pg"
    assert not (pg_dir / "postmaster.pid").exists(), "embedded PostgreSQL left running"
    server = EmbeddedPostgres(pg_dir, cleanup=True)
    try:
        counts = readings_by_device(server.start())
    finally:
        server.stop()
    assert all(counts.get(d, 0) > 0 for d in devices), counts


def test_demo_refuses_an_api_port_in_use_with_a_clear_message(
    pg_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    """The API port is taken: exit status 2 and a message naming the port and --api-port."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = demo(tmp_path, ["--duration", "5", "--api-port", str(port), "--mqtt-url",
                               mqtt_url, "--database-url", pg_url], {})
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert f"127.0.0.1:{port}" in out
    assert "--api-port" in out
    assert "Traceback" not in out


def test_demo_names_the_option_when_the_given_broker_is_unreachable(
    pg_url: str, tmp_path: Path
) -> None:
    """Nothing listens at --mqtt-url: exit status 2 and a message pointing at --mqtt-url."""
    port = free_port()
    proc = demo(tmp_path, ["--duration", "5", "--api-port", str(free_port()), "--mqtt-url",
                           f"mqtt://127.0.0.1:{port}", "--database-url", pg_url], {})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert f"127.0.0.1:{port}" in out
    assert "--mqtt-url" in out
    assert "Traceback" not in out
