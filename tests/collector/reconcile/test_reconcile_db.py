"""``tally-collector reconcile`` on a real database fed by real agents through a real broker."""

from __future__ import annotations

import asyncio
import json
import tomllib
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.config import parse_config
from agent.protocol import Reading
from collector.cli import main
from collector.config import load_config
from collector.runner import Collector
from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from tests.test_end_to_end import (
    agent_toml,
    collector_env,
    forget,
    prepare_session,
    start_recorded_agent,
    stored_count,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)


def _settled(pg_url: str, devices: list[str]) -> bool:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT payload FROM device_status WHERE device_id = ANY(%s)", (devices,)
        ).fetchall()
    return len(rows) == len(devices) and all(
        r[0].get("state") == "offline" and r[0].get("reconciliation") is not None
        and r[0]["buffer"]["depth"] == 0 for r in rows)


def _reconcile(capsys: pytest.CaptureFixture[str], devices: list[str]) -> tuple[int, Any]:
    argv = ["reconcile", "--json"]
    for d in devices:
        argv += ["--device", d]
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


async def test_reconcile_clean_fleet_then_injected_faults(
    pg_url: str, mqtt_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clean: exit 0 and taken == stored; a deleted batch is lost, a copied reading duplicated,
    a second value at one instant conflicting: each exits 1 naming its class."""
    migrate(pg_url)
    run = uuid.uuid4().hex[:8]
    devices = [f"rec-{run}-{i}" for i in range(2)]
    cid = f"tally-rec-{run}"
    prepare_session(mqtt_url, cid)
    env = collector_env(pg_url, mqtt_url, cid)
    pool = open_pool(pg_url, min_size=1, max_size=3)
    collector = Collector(load_config(None, env), pool)
    collector.start()
    try:
        assert await asyncio.to_thread(collector.consumer.wait_connected, 15)
        taken: list[tuple[str, Reading]] = []
        stop = asyncio.Event()
        cfgs = [parse_config(tomllib.loads(agent_toml(d, mqtt_url, tmp_path / d / "buf.db")))
                for d in devices]
        tasks = [await start_recorded_agent(c, stop, taken) for c in cfgs]
        await asyncio.sleep(2.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        total = len(taken)
        await asyncio.to_thread(wait_until, lambda: stored_count(pg_url, devices) >= total, 30,
                                "every reading stored")
        await asyncio.to_thread(wait_until, lambda: _settled(pg_url, devices), 30,
                                "the agents' farewell status with their counters")
    finally:
        collector.stop()
        pool.close()
        forget(mqtt_url, [cid, *devices], devices)

    monkeypatch.setenv("TALLY_DATABASE_URL", pg_url)
    code, doc = _reconcile(capsys, devices)
    assert code == 0, doc
    assert doc["ok"] is True
    assert sum(d["taken"] for d in doc["devices"]) == total
    assert sum(d["stored"] for d in doc["devices"]) == total
    assert doc["totals"]["lost"] == 0
    assert doc["totals"]["duplicated"] == 0

    victim = devices[0]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a copied and a conflicting reading
        conn.execute(
            "INSERT INTO readings (series_id, ts, value) SELECT r.series_id, r.ts, r.value"
            " FROM readings r JOIN series s USING (series_id) WHERE s.device_id = %s"
            " ORDER BY r.ts LIMIT 1", (devices[1],))
    code, doc = _reconcile(capsys, devices)
    assert code == 1
    by = {d["device_id"]: d for d in doc["devices"]}
    assert by[devices[1]]["duplicated"] == 1
    assert by[victim]["ok"] is True

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO readings (series_id, ts, value) SELECT r.series_id, r.ts, r.value + 1"
            " FROM readings r JOIN series s USING (series_id) WHERE s.device_id = %s"
            " ORDER BY r.ts DESC LIMIT 1", (devices[1],))
        # a batch lost between the broker and the database (its key and count gone)
        seq, count = conn.execute(
            "DELETE FROM batches WHERE (device_id, seq) = (SELECT device_id, seq FROM batches"
            " WHERE device_id = %s ORDER BY seq LIMIT 1 OFFSET 1) RETURNING seq, reading_count",
            (victim,)).fetchone() or (None, None)
        assert seq is not None
    code, doc = _reconcile(capsys, devices)
    assert code == 1
    by = {d["device_id"]: d for d in doc["devices"]}
    assert by[victim]["lost_batches"] == 1
    assert by[victim]["lost"] == count
    assert by[devices[1]]["conflicting"] == 1

    assert main(["reconcile", "--device", victim]) == 1
    table = capsys.readouterr().out
    assert "FAIL" in table
    assert victim in table
    assert "lost" in table.splitlines()[0]
