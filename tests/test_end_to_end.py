"""End to end: simulated agents -> real MQTT broker -> collector -> real PostgreSQL, exactly once.

Ground truth is what the agents *took*, never what the database says: in-process agents get their
sources wrapped in a recorder; agents run as processes (so that they can be SIGKILLed) get a
trigger in their SQLite buffer that journals every reading in the same transaction that commits
it (a reading counts as taken once it is committed to the buffer).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent import __version__ as agent_version
from agent.buffer import SqliteBuffer
from agent.buffer_inspect import inspect_buffer
from agent.clock import SystemClock, to_ms
from agent.config import AgentConfig, parse_config
from agent.protocol import Reading, status_topic
from agent.publisher import MqttPublisher
from agent.runner import Agent
from agent.sources.base import Source
from agent.sources.factory import build_sources
from agent.status import offline_status
from collector.config import load_config
from collector.embedded.broker import MqttBroker
from collector.runner import Collector
from collector.storage.database import open_pool
from collector.storage.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
Key = tuple[str, str, str]  # (device, meter, metric)
Produced = dict[Key, list[tuple[int, float]]]  # sorted (ts_ms, value) per series

pytestmark = pytest.mark.timeout(120)


# -- ground truth -----------------------------------------------------------------------------


class RecordingSource:
    """A source that records every reading it hands to the agent."""

    def __init__(self, inner: Source, device: str, sink: list[tuple[str, Reading]]) -> None:
        self._inner = inner
        self._device = device
        self._sink = sink

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def interval_s(self) -> float:
        return self._inner.interval_s

    async def read(self, now: datetime) -> Sequence[Reading]:
        readings = await self._inner.read(now)
        self._sink.extend((self._device, r) for r in readings)
        return readings

    async def close(self) -> None:
        await self._inner.close()


_JOURNAL = """
CREATE TABLE e2e_journal(meter TEXT NOT NULL, metric TEXT NOT NULL, ts_ms INTEGER NOT NULL,
                         value REAL NOT NULL);
CREATE TRIGGER e2e_journal_insert AFTER INSERT ON readings BEGIN
    INSERT INTO e2e_journal SELECT s.meter, s.metric, NEW.ts_ms, NEW.value
    FROM series s WHERE s.id = NEW.series_id;
END;
"""


async def journaled_buffer(path: Path, device: str) -> None:
    """Create the agent's buffer with a journal of every reading ever committed to it."""
    buf = await SqliteBuffer.open(path, device_id=device, now_ms=to_ms(SystemClock().now()))
    await buf.close()
    with sqlite3.connect(path) as conn:
        conn.executescript(_JOURNAL)


def journal(path: Path, device: str) -> Produced:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT meter, metric, ts_ms, value FROM e2e_journal").fetchall()
    return group((device, m, q, t, v) for m, q, t, v in rows)


def group(rows: Iterable[tuple[str, str, str, int, float]]) -> Produced:
    """Readings as sorted (ts_ms, value) lists per (device, meter, metric)."""
    out: Produced = {}
    for device, meter, metric, ts, value in rows:
        out.setdefault((device, meter, metric), []).append((int(ts), float(value)))
    return {k: sorted(v) for k, v in out.items()}


# -- what the database holds ------------------------------------------------------------------


def stored(pg_url: str, devices: Sequence[str]) -> Produced:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT s.device_id, s.meter, s.metric,"
            " round(extract(epoch FROM r.ts) * 1000)::bigint, r.value"
            " FROM readings r JOIN series s USING (series_id) WHERE s.device_id = ANY(%s)",
            (list(devices),),
        ).fetchall()
    return group(rows)


def stored_count(pg_url: str, devices: Sequence[str]) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings r JOIN series s USING (series_id)"
            " WHERE s.device_id = ANY(%s)", (list(devices),),
        ).fetchone()
    return int(row[0]) if row else 0


def duplicate_keys(pg_url: str, devices: Sequence[str]) -> int:
    """(series, ts) keys of these devices stored more than once."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM (SELECT r.series_id, r.ts FROM readings r"
            " JOIN series s USING (series_id) WHERE s.device_id = ANY(%s)"
            " GROUP BY 1, 2 HAVING count(*) > 1) d", (list(devices),),
        ).fetchone()
    return int(row[0]) if row else 0


def assert_exactly_once(pg_url: str, produced: Produced) -> None:
    """Per series: same count, same sum, the very same (ts, value) pairs; no key twice."""
    devices = sorted({k[0] for k in produced})
    got = stored(pg_url, devices)
    assert sorted(got) == sorted(produced), "series stored differ from series produced"
    for key, readings in produced.items():
        assert len(got[key]) == len(readings), f"{key}: count differs"
        assert math.fsum(v for _, v in got[key]) == math.fsum(v for _, v in readings), key
        assert got[key] == readings, f"{key}: stored readings differ from those taken"
    assert duplicate_keys(pg_url, devices) == 0


def wait_until(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


# -- MQTT housekeeping (persistent sessions and retained statuses on a shared broker) -----------


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


def prepare_session(url: str, client_id: str) -> None:
    """Create the collector's persistent session so nothing published before it runs is lost."""
    host, port = _endpoint(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.on_connect = lambda client, *a: client.subscribe("tally/v1/+/readings", qos=1)
    c.connect(host, port)
    c.loop_start()
    try:
        assert done.wait(10), "could not subscribe the collector's session"
    finally:
        c.disconnect()
        c.loop_stop()


def forget(url: str, client_ids: Sequence[str], devices: Sequence[str]) -> None:
    """Drop persistent sessions and clear retained status messages left on the broker."""
    host, port = _endpoint(url)
    for n, cid in enumerate(client_ids):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
        try:
            c.connect(host, port)
            c.loop_start()
            for d in devices if n == 0 else ():
                c.publish(status_topic(d), b"", qos=1, retain=True).wait_for_publish(5)
            c.disconnect()
            c.loop_stop()
        except (OSError, RuntimeError, ValueError):
            pass


# -- agents and collector ---------------------------------------------------------------------


def agent_toml(device: str, mqtt_url: str, buffer: Path) -> str:
    """Configuration of a fast agent: three simulated meters polled every 20-50 ms."""
    return f"""
device_id = "{device}"
status_interval_s = 1
shutdown_timeout_s = 15
[broker]
url = "{mqtt_url}"
reconnect_min_s = 0.05
reconnect_max_s = 0.5
keepalive_s = 5
[buffer]
path = "{buffer}"
[batch]
max_readings = 40
max_age_s = 0.1
in_flight = 8
[[sources]]
type = "simulated-energy"
name = "energy"
interval_s = 0.02
seed = 1
[[sources]]
type = "simulated-water"
name = "water"
interval_s = 0.03
daily_m3 = 50.0
[[sources]]
type = "simulated-data"
name = "data"
interval_s = 0.05
"""


async def start_recorded_agent(
    cfg: AgentConfig, stop: asyncio.Event, sink: list[tuple[str, Reading]]
) -> asyncio.Task[None]:
    """The agent's own pipeline (as ``run_agent`` builds it) with recording sources."""
    buffer = await SqliteBuffer.open(Path(cfg.buffer.path), device_id=cfg.device_id,
                                     now_ms=to_ms(SystemClock().now()),
                                     limits=cfg.buffer.limits())
    sources = [RecordingSource(s, cfg.device_id, sink) for s in build_sources(cfg.sources, buffer)]
    publisher = MqttPublisher(
        client_id=cfg.device_id, broker=cfg.broker, will_topic=status_topic(cfg.device_id),
        will_payload=offline_status(device=cfg.device_id, version=agent_version,
                                    reason="connection lost", now_ms=None),
        max_in_flight=cfg.batch.in_flight + 4,
    )
    agent = Agent(cfg, buffer=buffer, publisher=publisher, sources=sources, clock=SystemClock())
    return asyncio.create_task(agent.run(stop))


def collector_env(pg_url: str, mqtt_url: str, client_id: str) -> dict[str, str]:
    return {"TALLY_DATABASE_URL": pg_url, "TALLY_MQTT_URL": mqtt_url,
            "TALLY_MQTT_CLIENT_ID": client_id, "TALLY_INGEST_RETRY_MAX_S": "1.0",
            "TALLY_API_ENABLED": "false",
            # these agents are not enrolled: accept batches of unregistered devices
            "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true"}


async def test_agents_to_database_exactly_once(
    pg_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    """Three agents for a few seconds: the database holds exactly the readings they took."""
    migrate(pg_url)
    run = uuid.uuid4().hex[:8]
    devices = [f"e2e-{run}-{i}" for i in range(3)]
    cid = f"tally-e2e-{run}"
    prepare_session(mqtt_url, cid)
    pool = open_pool(pg_url, min_size=1, max_size=3)
    collector = Collector(load_config(None, collector_env(pg_url, mqtt_url, cid)), pool)
    collector.start()
    try:
        assert await asyncio.to_thread(collector.consumer.wait_connected, 15)
        taken: list[tuple[str, Reading]] = []
        stop = asyncio.Event()
        cfgs = [parse_config(tomllib.loads(agent_toml(d, mqtt_url, tmp_path / d / "buf.db")))
                for d in devices]
        tasks = [await start_recorded_agent(c, stop, taken) for c in cfgs]
        # let them produce at least 300 readings (about 4 s on a quiet machine, longer on a
        # loaded one); nothing below depends on how many more
        for _ in range(600):
            if len(taken) > 300:
                break
            await asyncio.sleep(0.1)
        stop.set()  # what SIGTERM does in `tally-agent run`: flush, then exit
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        for c in cfgs:
            assert inspect_buffer(Path(c.buffer.path)).depth == 0, "agent did not flush"
        produced = group([(d, r.meter, r.metric, r.ts_ms, r.value) for d, r in taken])
        total = sum(len(v) for v in produced.values())
        assert len(produced) == 9
        assert total > 300
        await asyncio.to_thread(wait_until, lambda: stored_count(pg_url, devices) >= total, 30,
                                "the collector to commit every reading")
        assert_exactly_once(pg_url, produced)
    finally:
        collector.stop()
        pool.close()
        forget(mqtt_url, [cid, *devices], devices)


# -- processes that get killed ----------------------------------------------------------------


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *argv], cwd=ROOT, stdout=out, stderr=out,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes], sig: int, timeout_s: float) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout_s)


async def test_exactly_once_through_sigkill_of_agent_and_collector(
    pg_url: str, private_broker: MqttBroker, tmp_path: Path
) -> None:
    """An agent and the collector are SIGKILLed mid-stream and restarted: still exactly once."""
    migrate(pg_url)
    url = private_broker.url
    run = uuid.uuid4().hex[:8]
    devices = [f"e2k-{run}-{i}" for i in range(3)]
    cid = f"tally-e2k-{run}"
    prepare_session(url, cid)
    env = collector_env(pg_url, url, cid)
    configs = {}
    for d in devices:
        buf = tmp_path / d / "buf.db"
        await journaled_buffer(buf, d)
        configs[d] = tmp_path / d / "agent.toml"
        configs[d].write_text(agent_toml(d, url, buf), encoding="utf-8")

    def agent(d: str) -> subprocess.Popen[bytes]:
        return _spawn(["-m", "agent", "run", "--config", str(configs[d])],
                      tmp_path / f"{d}.log", {})

    def collector() -> subprocess.Popen[bytes]:
        return _spawn(["-m", "collector", "run", "--no-api"], tmp_path / "collector.log", env)

    def stored_now() -> int:
        return stored_count(pg_url, devices)

    procs = {d: agent(d) for d in devices}
    coll = collector()
    try:
        await asyncio.to_thread(wait_until, lambda: stored_now() > 100, 30, "first readings")
        procs[devices[0]].kill()  # agent: SIGKILL mid-stream (batches in flight)
        procs[devices[0]].wait(10)
        mark = stored_now()
        await asyncio.to_thread(wait_until, lambda: stored_now() > mark + 100, 20, "more")
        coll.kill()  # collector: SIGKILL with messages not yet committed/acknowledged
        coll.wait(10)
        await asyncio.sleep(1.0)  # agents keep publishing into the broker's session meanwhile
        procs[devices[0]] = agent(devices[0])
        coll = collector()
        mark = stored_now()
        await asyncio.to_thread(wait_until, lambda: stored_now() > mark + 300, 30,
                                "ingest to resume after the restarts")
        for d in devices:  # the clean path: SIGTERM, flush, exit 0
            assert await asyncio.to_thread(_stop, procs[d], signal.SIGTERM, 40) == 0, d
        produced: Produced = {}
        for d in devices:
            assert inspect_buffer(tmp_path / d / "buf.db").depth == 0, f"{d} did not flush"
            produced.update(journal(tmp_path / d / "buf.db", d))
        total = sum(len(v) for v in produced.values())
        assert len(produced) == 9
        await asyncio.to_thread(wait_until, lambda: stored_now() >= total, 30,
                                "the collector to commit every reading")
        assert_exactly_once(pg_url, produced)
        assert await asyncio.to_thread(_stop, coll, signal.SIGTERM, 30) == 0
    finally:
        for p in [*procs.values(), coll]:
            if p.poll() is None:
                p.kill()
                p.wait(10)
