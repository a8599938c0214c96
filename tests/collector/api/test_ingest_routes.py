"""Ingest HTTP endpoints against the real database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from agent.protocol import encode_batch, readings_topic
from collector.api.app import create_app
from collector.api.ingest_routes import IngestProbe
from collector.ingest.messages import DeadLetter, DecodedBatch, FlushPlan, StatusUpdate
from collector.storage.database import Pool, open_pool
from collector.storage.ingest_store import ReadingStore
from collector.storage.migrate import migrate
from tests.collector.ingest.synthetic import BASE_MS, make_batch
from tests.support.proxy import TcpProxy


@pytest.fixture
def pool(pg_url: str) -> Iterator[Pool]:
    migrate(pg_url, use_timescale=False)
    p = open_pool(pg_url, min_size=1, max_size=2)
    p.wait(10)
    yield p
    p.close()


@pytest.fixture
def client(pool: Pool) -> TestClient:
    store = ReadingStore(pool)
    batches = [make_batch("dev-a", s) for s in (1, 2, 4)]
    store.write(FlushPlan(
        batches=tuple(DecodedBatch(b, readings_topic("dev-a"), encode_batch(b), BASE_MS)
                      for b in batches),
        statuses=(StatusUpdate("dev-a", BASE_MS, "online", 7,
                               '{"state":"online","buffer_depth":7}'),),
        dead_letters=tuple(DeadLetter("tally/v1/x/readings", b"\xff" * i, f"r{i}", "payload",
                                      BASE_MS) for i in range(3)),
    ))
    return TestClient(create_app(pool))


def _probe(connected: bool) -> IngestProbe:
    return IngestProbe(connected, 3, 0.5, None, True, 10, 100, 1)


def test_health_ok_with_database_and_connected_consumer(pool: Pool) -> None:
    """/health is 200 and reports the consumer when the DB answers and MQTT is connected."""
    r = TestClient(create_app(pool, ingest_probe=lambda: _probe(True))).get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["consumer"]["pending_messages"] == 3


def test_health_degraded_when_consumer_disconnected(pool: Pool) -> None:
    """/health is 503 when the consumer is not connected to the broker."""
    r = TestClient(create_app(pool, ingest_probe=lambda: _probe(False))).get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "degraded"


def test_health_degraded_when_database_unreachable(
    pg_proxied: tuple[str, TcpProxy], pg_url: str
) -> None:
    """/health is 503 with database false when the database is cut off."""
    url, proxy = pg_proxied
    p = open_pool(url, min_size=1, max_size=1, timeout_s=1.0, connect_timeout_s=1)
    try:
        proxy.cut()
        r = TestClient(create_app(p)).get("/health")
    finally:
        p.close()
    assert (r.status_code, r.json()["database"]) == (503, False)


def test_device_ingest_reports_gaps_and_status(client: TestClient) -> None:
    """/devices/{id}/ingest shows the missing seq 3 and the last status with buffer depth."""
    body = client.get("/devices/dev-a/ingest").json()
    assert body["gaps"] == [{"first": 3, "last": 3}]
    assert (body["batches"], body["readings"], body["missing_batches"]) == (3, 30, 1)
    assert body["status"]["buffer_depth"] == 7


def test_unknown_device_is_404(client: TestClient) -> None:
    """A device that never sent anything is 404."""
    assert client.get("/devices/ghost/ingest").status_code == 404


def test_devices_lists_known_devices(client: TestClient) -> None:
    """/devices lists each device once with its last seq."""
    body = client.get("/devices").json()
    assert [(d["device_id"], d["last_seq"]) for d in body] == [("dev-a", 4)]


def test_meter_readings_in_range(client: TestClient) -> None:
    """/devices/{id}/meters/{meter}/readings returns the readings in [from, to)."""
    start = datetime.fromtimestamp((BASE_MS + 10_000) / 1000, UTC).isoformat()
    end = datetime.fromtimestamp((BASE_MS + 12_000) / 1000, UTC).isoformat()
    r = client.get("/devices/dev-a/meters/m0/readings",
                   params={"metric": "energy", "from": start, "to": end})
    assert r.status_code == 200
    assert [x["value"] for x in r.json()] == [1000.0, 1000.25]


def test_meter_readings_reject_reversed_range(client: TestClient) -> None:
    """'to' before 'from' is a 422."""
    r = client.get("/devices/dev-a/meters/m0/readings",
                   params={"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"})
    assert r.status_code == 422


def test_dead_letters_are_paginated(client: TestClient) -> None:
    """/dead-letters pages with next_before and shows payloads in base64."""
    first = client.get("/dead-letters", params={"limit": 2}).json()
    rest = client.get("/dead-letters", params={"limit": 2, "before": first["next_before"]}).json()
    assert [x["reason"] for x in first["items"] + rest["items"]] == ["r2", "r1", "r0"]
    assert first["items"][0]["payload_base64"] == "//8="
    assert first["items"][0]["payload_size"] == 2
    assert first["items"][0]["truncated"] is False
    assert rest["next_before"] is None


def test_openapi_is_served(client: TestClient) -> None:
    """The OpenAPI document lists the ingest paths."""
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/devices", "/dead-letters"} <= set(paths)


def test_device_ingest_shows_the_last_confirmed_seq(client: TestClient, pool: Pool) -> None:
    """After a flush whose acknowledgement covers an unbroken run from the agent's ``low``,
    /devices/{id}/ingest shows where that run ends (``confirmed_seq``)."""
    from dataclasses import replace  # noqa: PLC0415

    from collector.ingest.decoders import DecoderTable  # noqa: PLC0415
    from collector.ingest.messages import InboundMessage  # noqa: PLC0415
    from collector.ingest.planning import plan_flush  # noqa: PLC0415

    assert client.get("/devices/dev-a/ingest").json()["confirmed_seq"] is None
    batch = replace(make_batch("dev-a", 3), low=1)
    msg = InboundMessage(readings_topic("dev-a"), encode_batch(batch), 1, 1, BASE_MS)
    ReadingStore(pool).write(plan_flush([msg], DecoderTable()))
    body = client.get("/devices/dev-a/ingest").json()
    assert body["confirmed_seq"] == 4
    assert body["confirmed_at"] is not None
    assert body["gaps"] == []
