"""Fast fleet: 200 simulated agents (real buffer, batching, publisher) in one process, time
compressed 1800× (a reading every 15 simulated minutes per meter), with clock jumps, meter
resets, rollovers and agent outages; ends with a reconciliation: 0 lost, 0 duplicated, and the
meters' own count of readings equals what the database stored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from agent.fleet.plan import FleetSpec, plan_fleet
from agent.fleet.simulator import run_fleet
from collector.config import load_config
from collector.reconcile.gather import reconcile
from collector.runner import Collector
from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from tests.test_end_to_end import collector_env, forget, prepare_session, wait_until

pytestmark = pytest.mark.timeout(240)


def _stored(pg_url: str, prefix: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT coalesce(sum(readings), 0) FROM device_ingest"
                           " WHERE device_id LIKE %s", (prefix + "-%",)).fetchone()
    return int(row[0]) if row else 0


def _farewells(pg_url: str, prefix: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM device_status WHERE device_id LIKE %s AND state = 'offline'"
            " AND (payload -> 'buffer' ->> 'depth')::bigint = 0", (prefix + "-%",)).fetchone()
    return int(row[0]) if row else 0


async def test_fleet_fast_mode_reconciles(pg_url: str, mqtt_url: str, tmp_path: Path) -> None:
    migrate(pg_url)
    prefix = f"fleet-{uuid.uuid4().hex[:6]}"
    spec = FleetSpec(devices=200, prefix=prefix, meters_per_device=2, poll_s=0.5,
                     duration_s=20.0, seed=7, fault_share=0.1)
    plans = plan_fleet(spec)
    devices = [p.device_id for p in plans]
    cid = f"tally-{prefix}"
    prepare_session(mqtt_url, cid)
    pool = open_pool(pg_url, min_size=1, max_size=3)
    collector = Collector(load_config(None, collector_env(pg_url, mqtt_url, cid)), pool)
    collector.start()
    try:
        assert await asyncio.to_thread(collector.consumer.wait_connected, 15)
        run = await run_fleet(plans, mqtt_url=mqtt_url, workdir=tmp_path,
                              start=datetime(2026, 1, 10, tzinfo=UTC), factor=1800.0,
                              duration_s=spec.duration_s, status_s=5.0)
        assert run.errors == []
        assert run.restarts > 0
        assert run.jumps > 0
        assert run.resets > 0
        assert run.rollovers > 0
        # the fleet really ran (a reading every few seconds per meter at least); how fast it
        # runs is measured by bench/fleet.py, not asserted here
        assert run.polls > 200 * 2 * 5
        await asyncio.to_thread(wait_until, lambda: _stored(pg_url, prefix) >= run.polls, 60,
                                "every reading stored")
        await asyncio.to_thread(wait_until, lambda: _farewells(pg_url, prefix) == len(devices),
                                60, "every agent's farewell")
    finally:
        collector.stop()
        forget(mqtt_url, [cid, *devices], devices)
    try:
        fleet = reconcile(pool, devices)
    finally:
        pool.close()
    assert len(fleet.devices) == len(devices)
    assert fleet.total("lost") == 0
    assert fleet.total("lost_batches") == 0
    assert fleet.total("duplicated") == 0
    assert fleet.total("conflicting") == 0
    assert fleet.ok
    assert fleet.total("taken") == run.polls  # the agents' counters match the meters' own log
    assert fleet.total("stored") == run.polls
