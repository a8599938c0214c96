"""The fleet view of one device (pure) and through the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from collector.devices.fleet import fleet_entry
from collector.ingest.messages import FlushPlan, StatusUpdate
from collector.storage.database import Pool
from collector.storage.ingest_store import ReadingStore

from .api_support import SECRET
from .api_support import enroll_code_doc as _enroll

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _entry(state: str | None, age: timedelta | None, ts_offset_ms: int = 0):  # type: ignore[no-untyped-def]
    status_at = None if age is None else NOW - age
    doc = None
    if state is not None and status_at is not None:
        doc = {"state": state, "ts": round(status_at.timestamp() * 1000) + ts_offset_ms,
               "agent": "0.1.0", "config_version": 3, "buffer_depth": 12}
    return fleet_entry(device_id="d", customer_id="c", site="s", state="active",
                       config_version=3, status_at=status_at, status=doc, last_batch_at=None,
                       batches=0, readings=0, now=NOW, stale_after=timedelta(minutes=5))


@pytest.mark.parametrize(
    ("state", "age", "connection"),
    [
        ("online", timedelta(seconds=30), "online"),
        ("offline", timedelta(seconds=30), "offline"),  # the last will
        ("online", timedelta(minutes=10), "stale"),
        ("offline", timedelta(days=3), "offline"),
        (None, None, "never"),
    ],
)
def test_connection_state(state: str | None, age: timedelta | None, connection: str) -> None:
    assert _entry(state, age).connection == connection


def test_clock_offset_and_versions() -> None:
    e = _entry("online", timedelta(seconds=1), ts_offset_ms=-4200)
    assert e.clock_offset_ms == -4200
    assert e.running_config_version == 3
    assert e.agent_version == "0.1.0"
    assert e.buffer_depth == 12
    assert e.last_seen == NOW - timedelta(seconds=1)


def test_fleet_route_joins_status(client: TestClient, pool: Pool) -> None:
    code = str(_enroll(client)["code"])
    dev = client.post("/enroll", json={"code": code, "secret": SECRET}).json()["device_id"]
    now_ms = round(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1000)
    doc = {"state": "online", "device": dev, "agent": "0.1.0", "config_version": 1,
           "ts": now_ms + 1500, "buffer_depth": 4}
    ReadingStore(pool).write(FlushPlan((), (StatusUpdate(dev, now_ms, "online", 4,
                                                         json.dumps(doc)),), ()))
    rows = client.get("/devices/fleet").json()
    assert len(rows) == 1
    row = rows[0]
    assert row["device_id"] == dev
    assert row["connection"] == "online"
    assert row["clock_offset_ms"] == 1500
    assert row["buffer_depth"] == 4
    assert row["running_config_version"] == 1
    assert row["config_version"] == 1
