"""Enrollment end to end: staff code → `tally-agent enroll` over HTTP → credentials live at the
real broker (deployed configuration) → `tally-agent run` publishes → the collector stores it.
Then decommissioning drops the agent and its later batches are refused."""

from __future__ import annotations

import asyncio
import stat
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn

from agent.buffer_inspect import inspect_buffer
from agent.cli import main as agent_main
from agent.config import load_config as load_agent_config
from agent.runner import open_agent
from collector.api.app import create_app
from collector.config import load_config
from collector.devices.broker_dynsec import DynsecBrokerAccess
from collector.devices.service import DeviceService, ServiceSettings
from collector.embedded.broker import free_port, wait_for_port
from collector.runner import Collector
from collector.storage.database import Pool, open_pool
from collector.storage.devices_store import DeviceStore
from collector.storage.migrate import migrate
from tests.support.dynsec_broker import DynsecBroker

from .conftest import COLLECTOR_PASSWORD

pytestmark = pytest.mark.timeout(300)

METERS = [{"name": "main", "type": "simulated-energy", "interval_s": 0.2,
           "options": {"seed": 3, "base_kw": 0.5, "peak_kw": 2.0}}]


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def pool(pg_url: str) -> Iterator[Pool]:
    migrate(pg_url, use_timescale=False)
    p = open_pool(pg_url, min_size=1, max_size=4)
    p.wait(10)
    yield p
    p.close()


@pytest.fixture
def api_url(pool: Pool, broker_access: DynsecBrokerAccess,
            dynsec_broker: DynsecBroker) -> Iterator[str]:
    app = create_app(pool)
    app.state.devices = DeviceService(DeviceStore(pool), broker_access,
                                      ServiceSettings(dynsec_broker.url), _now)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stored(pg_url: str, device: str, meter: str = "%") -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings r JOIN series s USING (series_id)"
            " WHERE s.device_id = %s AND s.meter LIKE %s", (device, meter)).fetchone()
    return int(row[0]) if row else 0


def status_version(pg_url: str, device: str) -> int | None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT payload->>'config_version' FROM device_status"
                           " WHERE device_id = %s", (device,)).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def _enrollment(api_url: str, **extra: object) -> str:
    r = httpx.post(f"{api_url}/devices/enrollments",
                   json={"customer_id": "cust-e2e", "site": "Lab", "meters": METERS, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


def _collector(pg_url: str, broker: DynsecBroker, pool: Pool) -> Collector:
    env = {"TALLY_DATABASE_URL": pg_url,
           "TALLY_MQTT_URL": f"mqtt://collector:{COLLECTOR_PASSWORD}@127.0.0.1:{broker.port}",
           "TALLY_MQTT_CLIENT_ID": "tally-e2e-collector", "TALLY_INGEST_RETRY_MAX_S": "1.0",
           "TALLY_API_ENABLED": "false"}
    return Collector(load_config(None, env), pool)


async def test_enroll_then_run_publishes_with_no_further_step(
    pg_url: str, pool: Pool, api_url: str, dynsec_broker: DynsecBroker, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _enrollment(api_url)
    config = tmp_path / "etc" / "agent.toml"
    state = tmp_path / "state"
    argv = ["enroll", "--collector", api_url, "--code", code, "--config", str(config),
            "--state-dir", str(state)]
    assert await asyncio.to_thread(agent_main, argv) == 0
    assert "enrolled as dev-" in capsys.readouterr().out
    for path in (config, state / "broker.password"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    cfg = load_agent_config(config, {})
    device = cfg.device_id
    # Running enroll again changes nothing: no second identity, the code is not even sent.
    assert await asyncio.to_thread(agent_main, argv) == 0
    assert f"already enrolled as {device}" in capsys.readouterr().out
    registry = await asyncio.to_thread(httpx.get, f"{api_url}/devices/registry")
    assert len(registry.json()) == 1

    collector = _collector(pg_url, dynsec_broker, pool)
    collector.start()
    stop = asyncio.Event()
    try:
        assert await asyncio.to_thread(collector.consumer.wait_connected, 15)
        running = await open_agent(cfg)
        agent = asyncio.create_task(running.run(stop))
        await asyncio.to_thread(wait_until, lambda: stored(pg_url, device) >= 5, 60,
                                "readings of the enrolled agent in the database")
        # Remote configuration: a second meter; applied without restart, version reported.
        meters = [*METERS, {"name": "pump", "type": "simulated-water", "interval_s": 0.2,
                            "options": {"daily_m3": 5.0}}]
        r = await asyncio.to_thread(httpx.put, f"{api_url}/devices/registry/{device}/config",
                                    json={"meters": meters})
        assert r.status_code == 200, r.text
        assert r.json()["config_version"] == 2
        await asyncio.to_thread(wait_until, lambda: stored(pg_url, device, "pump") >= 3, 60,
                                "readings of the remotely added meter")
        await asyncio.to_thread(wait_until, lambda: status_version(pg_url, device) == 2, 60,
                                "the agent to report config version 2")
        assert not agent.done()
        # Decommissioning: the broker drops the agent at once and refuses it from then on.
        r = await asyncio.to_thread(
            httpx.post, f"{api_url}/devices/registry/{device}/decommission")
        assert r.status_code == 200
        await asyncio.to_thread(
            wait_until, lambda: "not authorised" in str(running.health.last_error), 60,
            "the agent to be refused by the broker")
        stop.set()
        await asyncio.wait_for(agent, 60)
    finally:
        stop.set()
        collector.stop()


def batch_count(pg_url: str, device: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*) FROM batches WHERE device_id = %s",
                           (device,)).fetchone()
    return int(row[0]) if row else 0


async def _run_for(cfg_path: Path, seconds: float) -> tuple[int, int]:
    """Run the agent from its enrolled config; (batches, readings) the broker acknowledged."""
    running = await open_agent(load_agent_config(cfg_path, {}))
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 60)
    depth = inspect_buffer(Path(running.cfg.buffer.path)).depth
    assert depth == 0, f"the agent stopped with {depth} unacknowledged readings"
    return running.health.published_batches, running.health.published_readings


async def test_wiped_disk_reenrolls_and_no_new_batch_is_taken_for_an_old_one(
    pg_url: str, pool: Pool, api_url: str, dynsec_broker: DynsecBroker, tmp_path: Path,
) -> None:
    """A device loses its disk (buffer, credentials, config): re-enrolled with a new code it
    keeps its id, and every batch it sends afterwards is stored: none is swallowed as a
    duplicate of a seq from before the wipe (the buffer's seq base is its creation time)."""
    config, state = tmp_path / "agent.toml", tmp_path / "state"
    code = _enrollment(api_url)
    argv = ["enroll", "--collector", api_url, "--code", code, "--config", str(config),
            "--state-dir", str(state)]
    assert await asyncio.to_thread(agent_main, argv) == 0
    device = load_agent_config(config, {}).device_id
    collector = _collector(pg_url, dynsec_broker, pool)
    collector.start()
    try:
        assert await asyncio.to_thread(collector.consumer.wait_connected, 15)
        b1, r1 = await _run_for(config, 2.0)
        assert b1 > 0
        for path in (*state.iterdir(), config):  # the wipe
            path.unlink()
        r = await asyncio.to_thread(
            httpx.post, f"{api_url}/devices/enrollments",
            json={"customer_id": "cust-e2e", "site": "Lab", "purpose": "reenroll",
                  "target_device": device})
        argv[4] = r.json()["code"]
        assert await asyncio.to_thread(agent_main, argv) == 0
        assert load_agent_config(config, {}).device_id == device
        b2, r2 = await _run_for(config, 2.0)
        assert b2 > 0
        await asyncio.to_thread(wait_until, lambda: stored(pg_url, device) >= r1 + r2, 60,
                                "every reading of both installations")
        assert stored(pg_url, device) == r1 + r2
        assert batch_count(pg_url, device) == b1 + b2
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT count(*) FROM batch_conflicts").fetchone()
        assert row == (0,)
    finally:
        collector.stop()
