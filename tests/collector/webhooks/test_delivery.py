"""Webhook delivery to a real HTTP receiver that verifies Standard Webhooks signatures:
signed, retried with backoff, logged, redelivered; nothing lost and nothing twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from collector.storage import webhook_store
from collector.webhooks.backoff import RetrySchedule
from collector.webhooks.delivery import DeliverySettings, DeliveryWorker
from collector.webhooks.events import EventType
from collector.webhooks.loop import announce_offline_devices
from collector.webhooks.outbox import OutboxSink
from collector.webhooks.signing import new_secret
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc
from tests.collector.webhooks.receiver import Receiver

Conn = psycopg.Connection[Any]
Pool = psycopg_pool.ConnectionPool[Any]
T0 = utc(2026, 3, 1, 12)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def _endpoint(conn: Conn, receiver: Receiver, types: list[str] | None = None) -> int:
    receiver.secret = new_secret()
    e = webhook_store.create_endpoint(
        conn, receiver.url, receiver.secret, event_types=types, customer_id=None,
        description="test",
    )
    return e.endpoint_id


def _emit(pool: Pool, n: int, at: datetime = T0) -> list[str]:
    ids = []
    with pool.connection() as conn, conn.transaction():
        for i in range(n):
            eid = OutboxSink().emit(conn, EventType.ENROLLMENT_DONE, {"device_id": f"d{i}"}, at=at)
            assert eid is not None
            ids.append(eid)
    return ids


def test_a_signed_event_reaches_the_receiver(
    pool: Pool, conn: Conn, receiver: Receiver
) -> None:
    """One event, one POST whose signature verifies; the body is the stored event."""
    _endpoint(conn, receiver)
    (eid,) = _emit(pool, 1)
    with httpx.Client() as client:
        assert DeliveryWorker(pool, client, Clock(T0)).drain() == 1
    assert receiver.ids() == [eid]
    body = receiver.accepted[0][1]
    assert body["type"] == "enrollment.done"
    assert body["data"] == {"device_id": "d0"}
    assert body["timestamp"].startswith("2026-03-01T12:00:00")
    (d,) = webhook_store.list_deliveries(conn)
    assert (d.status, d.attempts, d.last_status) == ("delivered", 1, 204)


def test_a_rolled_back_transaction_emits_nothing(
    pool: Pool, conn: Conn, receiver: Receiver
) -> None:
    """The outbox row belongs to the transaction: a rollback leaves no event to deliver."""
    _endpoint(conn, receiver)
    with pool.connection() as c, c.transaction():
        OutboxSink().emit(c, EventType.ENROLLMENT_DONE, {"device_id": "x"}, at=T0)
        raise psycopg.Rollback
    assert webhook_store.list_deliveries(conn) == []


def test_no_endpoint_no_event(pool: Pool, conn: Conn, receiver: Receiver) -> None:
    """Events nobody subscribed to are not stored; an endpoint gets only its event types."""
    assert _emit_one(pool, EventType.ENROLLMENT_DONE) is None
    _endpoint(conn, receiver, ["invoice.finalized"])
    assert _emit_one(pool, EventType.ENROLLMENT_DONE) is None
    assert _emit_one(pool, EventType.INVOICE_FINALIZED) is not None


def _emit_one(pool: Pool, t: EventType) -> str | None:
    with pool.connection() as c, c.transaction():
        return OutboxSink().emit(c, t, {}, at=T0)


def test_a_failing_receiver_recovers_nothing_lost_nothing_twice(
    pool: Pool, conn: Conn, receiver: Receiver
) -> None:
    """The receiver answers 500 to its first 25 requests; with retries (5 s, 5 min, …) every
    one of 20 events is accepted exactly once, and the log shows the failed attempts."""
    _endpoint(conn, receiver)
    ids = _emit(pool, 20)
    receiver.fail_first = 25
    clock = Clock(T0)
    with httpx.Client() as client:
        worker = DeliveryWorker(pool, client, clock)
        for _ in range(10):
            worker.drain()
            clock.t += timedelta(hours=1)
    assert sorted(receiver.ids()) == sorted(ids)
    assert not [k for k, v in Counter(receiver.ids()).items() if v > 1]
    log = webhook_store.list_deliveries(conn)
    assert {d.status for d in log} == {"delivered"}
    assert sum(d.attempts for d in log) == 20 + 25
    first = min(log, key=lambda d: d.delivery_id)
    attempts = webhook_store.attempts_of(conn, first.delivery_id)
    assert [a[1] for a in attempts][:2] == [500, 500]
    assert (attempts[1][0] - attempts[0][0]) >= timedelta(seconds=5)


def test_a_receiver_that_is_down_is_retried_with_backoff(
    pool: Pool, conn: Conn, receiver: Receiver
) -> None:
    """Connection refused is an attempt with its error; the next one waits for the schedule;
    after the last attempt the delivery has failed until it is redelivered."""
    receiver.secret = new_secret()
    webhook_store.create_endpoint(
        conn, "http://127.0.0.1:9/closed", receiver.secret, event_types=None, customer_id=None,
        description=None,
    )
    _emit(pool, 1)
    clock = Clock(T0)
    settings = DeliverySettings(schedule=RetrySchedule((10, 60)), timeout_s=2)
    with httpx.Client() as client:
        worker = DeliveryWorker(pool, client, clock, settings)
        assert worker.drain() == 1
        clock.t += timedelta(seconds=9)
        assert worker.drain() == 0  # not due yet
        clock.t += timedelta(seconds=1)
        assert worker.drain() == 1
        clock.t += timedelta(seconds=60)
        assert worker.drain() == 1
    (d,) = webhook_store.list_deliveries(conn)
    assert (d.status, d.attempts, d.last_status) == ("failed", 3, None)
    assert d.last_error is not None
    assert "Connect" in d.last_error


def test_two_workers_never_send_one_delivery_twice(
    pool: Pool, conn: Conn, receiver: Receiver
) -> None:
    """Two workers draining 60 deliveries at once: each event arrives exactly once."""
    _endpoint(conn, receiver)
    ids = _emit(pool, 60)
    clock = Clock(T0)

    def work() -> None:
        with httpx.Client() as client:
            DeliveryWorker(pool, client, clock, DeliverySettings(batch=5)).drain()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert receiver.requests == 60
    assert sorted(receiver.ids()) == sorted(ids)


def test_invoice_events_come_from_the_invoices(
    pool: Pool, conn: Conn, receiver: Receiver
) -> None:
    """Close drafts an invoice (invoice.drafted), finalize announces it (invoice.finalized)."""
    _endpoint(conn, receiver, ["invoice.drafted", "invoice.finalized"])
    c = accounts.create_customer(conn, spec())
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    sid = make_series(conn, "dev-inv")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 2, 28), utc(2026, 4, 2), 1.0)
    close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    finalize_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    with httpx.Client() as client:  # the triggers stamp events with the database's now()
        DeliveryWorker(pool, client, Clock(datetime.now(UTC) + timedelta(minutes=1))).drain()
    got = [(b["type"], b["data"]["status"], b["data"]["total"]) for _, b in receiver.accepted]
    assert sorted(got) == [
        ("invoice.drafted", "draft", "911.13"),
        ("invoice.finalized", "final", "911.13"),
    ]


def test_an_offline_device_is_announced_once_per_silence(
    pool: Pool, conn: Conn, receiver: Receiver
) -> None:
    """A device quiet for over an hour: one device.offline; again only after it spoke again."""
    _endpoint(conn, receiver, ["device.offline"])
    conn.execute(
        "INSERT INTO device_ingest (device_id, batches, readings, first_seq, last_seq,"
        " last_seen) VALUES ('m-7', 1, 1, 1, 1, %s)",
        (T0 - timedelta(hours=2),),
    )
    sink = OutboxSink()
    assert announce_offline_devices(pool, T0, 3600, sink) == 1
    assert announce_offline_devices(pool, T0 + timedelta(minutes=5), 3600, sink) == 0
    conn.execute("UPDATE device_ingest SET last_seen = %s", (T0 + timedelta(minutes=10),))
    assert announce_offline_devices(pool, T0 + timedelta(hours=2), 3600, sink) == 1


@pytest.fixture
def client(pool: Pool) -> Iterator[TestClient]:
    app = create_app(pool)
    app.state.clock = lambda: T0
    with TestClient(app) as c:
        yield c


def test_api_endpoints_log_and_manual_redelivery(
    client: TestClient, pool: Pool, receiver: Receiver
) -> None:
    """An endpoint made over the API gets its secret once; the log lists the delivery; a
    manual redelivery sends the same webhook-id again."""
    r = client.post("/webhooks/endpoints", json={"url": receiver.url,
                                                 "event_types": ["enrollment.done"]})
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    assert "secret" not in client.get("/webhooks/endpoints").json()[0]
    assert client.post("/webhooks/endpoints", json={"url": "ftp://x"}).status_code == 422
    assert client.post("/webhooks/endpoints", json={"url": receiver.url,
                                                    "event_types": ["nope"]}).status_code == 422
    (eid,) = _emit(pool, 1)
    with httpx.Client() as http:
        DeliveryWorker(pool, http, Clock(T0)).drain()
        (d,) = client.get("/webhooks/deliveries").json()
        assert d["status"] == "delivered"
        r = client.post(f"/webhooks/deliveries/{d['delivery_id']}/redeliver")
        assert r.json()["status"] == "pending"
        DeliveryWorker(pool, http, Clock(T0)).drain()
    assert receiver.ids() == [eid, eid]
    attempts = client.get(f"/webhooks/deliveries/{d['delivery_id']}/attempts").json()
    assert [a["status_code"] for a in attempts] == [204, 204]
    assert client.post("/webhooks/deliveries/999/redeliver").status_code == 404


def test_a_correction_is_announced_when_the_correcting_invoice_is_final(
    pool: Pool, conn: Conn, receiver: Receiver
) -> None:
    """Late March usage becomes an adjustment on April's invoice; finalizing April announces
    invoice.corrected for March's invoice with the adjustment amount."""
    _endpoint(conn, receiver, ["invoice.corrected"])
    c = accounts.create_customer(conn, spec())
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    sid = make_series(conn, "dev-cor")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 2, 28), utc(2026, 5, 2), 1.0, updated_at=utc(2026, 4, 1))
    close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    finalize_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    put_usage(conn, sid, utc(2026, 3, 10), utc(2026, 3, 11), 2.0, updated_at=utc(2026, 4, 20))
    close_period(pool, PeriodKey(2026, 4), utc(2026, 5, 10))
    finalize_period(pool, PeriodKey(2026, 4), utc(2026, 5, 10))
    with httpx.Client() as client:
        DeliveryWorker(pool, client, Clock(datetime.now(UTC) + timedelta(minutes=1))).drain()
    (body,) = [b for _, b in receiver.accepted]
    assert body["type"] == "invoice.corrected"
    assert body["data"]["amount"] == "24.00"
    assert body["data"]["number"] is not None
