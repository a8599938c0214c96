"""Webhook endpoints, the event outbox, deliveries and their attempt log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from collector.errors import NotFound, NotificationError
from collector.storage.database import translate_errors

__all__ = [
    "Attempt",
    "Delivery",
    "DueDelivery",
    "Endpoint",
    "attempts_of",
    "backlog",
    "claim_due",
    "create_endpoint",
    "emit",
    "list_deliveries",
    "list_endpoints",
    "offline_devices",
    "record_attempt",
    "redeliver",
    "set_endpoint_active",
]

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: int
    url: str
    secret: str
    event_types: tuple[str, ...] | None
    customer_id: int | None
    description: str | None
    active: bool


def _endpoint(r: Sequence[Any]) -> Endpoint:
    return Endpoint(int(r[0]), r[1], r[2], tuple(r[3]) if r[3] is not None else None,
                    r[4], r[5], bool(r[6]))


def create_endpoint(
    conn: Conn,
    url: str,
    secret: str,
    *,
    event_types: Sequence[str] | None,
    customer_id: int | None,
    description: str | None,
) -> Endpoint:
    with translate_errors("create webhook endpoint"):
        if customer_id is not None and conn.execute(
            "SELECT 1 FROM customers WHERE customer_id = %s", (customer_id,)
        ).fetchone() is None:
            raise NotFound(f"customer {customer_id} does not exist")
        row = conn.execute(
            "INSERT INTO webhook_endpoints (url, secret, event_types, customer_id, description)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING endpoint_id, url, secret, event_types,"
            " customer_id, description, active",
            (url, secret, list(event_types) if event_types is not None else None, customer_id,
             description),
        ).fetchone()
    assert row is not None
    return _endpoint(row)


def list_endpoints(conn: Conn) -> list[Endpoint]:
    with translate_errors("list webhook endpoints"):
        rows = conn.execute(
            "SELECT endpoint_id, url, secret, event_types, customer_id, description, active"
            " FROM webhook_endpoints ORDER BY endpoint_id"
        ).fetchall()
    return [_endpoint(r) for r in rows]


def set_endpoint_active(conn: Conn, endpoint_id: int, active: bool) -> Endpoint:
    with translate_errors("update webhook endpoint"):
        row = conn.execute(
            "UPDATE webhook_endpoints SET active = %s WHERE endpoint_id = %s"
            " RETURNING endpoint_id, url, secret, event_types, customer_id, description, active",
            (active, endpoint_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist")
    return _endpoint(row)


def emit(
    conn: Conn,
    event_type: str,
    data: Mapping[str, Any],
    *,
    at: datetime,
    customer_id: int | None,
) -> str | None:
    """Write one event and its deliveries in the caller's transaction (``tally_webhook_emit``,
    migration 0051); None when no active endpoint wants it."""
    with translate_errors("emit webhook event"):
        row = conn.execute(
            "SELECT tally_webhook_emit(%s, %s, %s, %s)",
            (event_type, customer_id, Jsonb(dict(data)), at),
        ).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class DueDelivery:
    delivery_id: int
    event_id: str
    url: str
    secret: str
    body: bytes
    attempts: int
    created_at: datetime


def claim_due(conn: Conn, now: datetime, *, limit: int, lease: timedelta) -> list[DueDelivery]:
    """Pending deliveries due at ``now``, leased for ``lease`` (their next attempt moved past
    the lease, so another worker skips them): ``FOR UPDATE SKIP LOCKED`` in one statement.
    The body is the event payload exactly as stored (the signed bytes)."""
    with translate_errors("claim webhook deliveries"):
        rows = conn.execute(
            "WITH due AS (SELECT delivery_id FROM webhook_deliveries"
            "  WHERE status = 'pending' AND next_attempt_at <= %s"
            "  ORDER BY next_attempt_at, delivery_id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " UPDATE webhook_deliveries d SET next_attempt_at = %s FROM due, webhook_events v,"
            "  webhook_endpoints e WHERE d.delivery_id = due.delivery_id"
            "  AND v.event_id = d.event_id AND e.endpoint_id = d.endpoint_id"
            " RETURNING d.delivery_id, d.event_id, e.url, e.secret, v.payload::text,"
            "  d.attempts, v.created_at",
            (now, limit, now + lease),
        ).fetchall()
    return [
        DueDelivery(int(r[0]), r[1], r[2], r[3], r[4].encode(), int(r[5]), r[6])
        for r in sorted(rows, key=lambda r: int(r[0]))
    ]


def record_attempt(
    conn: Conn,
    delivery_id: int,
    *,
    at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    delivered: bool,
    retry_at: datetime | None,
) -> None:
    """Log one attempt and move the delivery on: delivered, retried at ``retry_at``, or failed
    (not delivered and no ``retry_at``)."""
    status = "delivered" if delivered else "pending" if retry_at is not None else "failed"
    with translate_errors("record webhook attempt"):
        conn.execute(
            "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error,"
            " duration_ms) VALUES (%s, %s, %s, %s, %s)",
            (delivery_id, at, status_code, error, duration_ms),
        )
        conn.execute(
            "UPDATE webhook_deliveries SET status = %s, attempts = attempts + 1,"
            " last_status = %s, last_error = %s, delivered_at = CASE WHEN %s THEN %s END,"
            " next_attempt_at = coalesce(%s, next_attempt_at) WHERE delivery_id = %s",
            (status, status_code, error, delivered, at, retry_at, delivery_id),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: int
    event_id: str
    event_type: str
    endpoint_id: int
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


def list_deliveries(
    conn: Conn, *, status: str | None = None, endpoint_id: int | None = None, limit: int = 100
) -> list[Delivery]:
    if status is not None and status not in ("pending", "delivered", "failed"):
        raise NotificationError("status must be pending, delivered or failed")
    with translate_errors("list webhook deliveries"):
        rows = conn.execute(
            "SELECT d.delivery_id, d.event_id, v.event_type, d.endpoint_id, d.status,"
            " d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at,"
            " d.created_at FROM webhook_deliveries d JOIN webhook_events v USING (event_id)"
            " WHERE (%s::text IS NULL OR d.status = %s) AND (%s::bigint IS NULL OR"
            " d.endpoint_id = %s) ORDER BY d.delivery_id DESC LIMIT %s",
            (status, status, endpoint_id, endpoint_id, limit),
        ).fetchall()
    return [Delivery(*r) for r in rows]


Attempt = tuple[datetime, int | None, str | None, float]


def attempts_of(conn: Conn, delivery_id: int) -> list[Attempt]:
    with translate_errors("list webhook attempts"):
        rows = conn.execute(
            "SELECT attempted_at, status_code, error, duration_ms FROM webhook_attempts"
            " WHERE delivery_id = %s ORDER BY attempt_id",
            (delivery_id,),
        ).fetchall()
    return [(r[0], r[1], r[2], float(r[3])) for r in rows]


def redeliver(conn: Conn, delivery_id: int, now: datetime) -> Delivery:
    """Queue a delivery again now, whatever its status (manual redelivery; the same event id,
    so receivers can recognise a message they already have)."""
    with translate_errors("redeliver webhook"):
        row = conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = %s,"
            " delivered_at = NULL WHERE delivery_id = %s RETURNING delivery_id",
            (now, delivery_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} does not exist")
    return next(d for d in list_deliveries(conn, limit=1_000_000) if d.delivery_id == delivery_id)


def backlog(conn: Conn) -> tuple[int, float]:
    """(pending deliveries, age in seconds of the oldest pending event; 0 if none)."""
    with translate_errors("webhook backlog"):
        row = conn.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(d.created_at)), 0)"
            " FROM webhook_deliveries d WHERE d.status = 'pending'"
        ).fetchone()
    assert row is not None
    return int(row[0]), float(row[1])


def offline_devices(
    conn: Conn, silent_since: datetime, now: datetime
) -> list[tuple[str, datetime]]:
    """Devices last seen before ``silent_since`` that were not yet announced offline for this
    silence; marks them announced (caller's transaction)."""
    with translate_errors("find offline devices"):
        rows = conn.execute(
            "INSERT INTO webhook_device_offline (device_id, last_seen, notified_at)"
            " SELECT d.device_id, d.last_seen, %s FROM device_ingest d"
            " LEFT JOIN webhook_device_offline o USING (device_id)"
            " WHERE d.last_seen < %s AND (o.device_id IS NULL OR o.last_seen <> d.last_seen)"
            " ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen,"
            "  notified_at = excluded.notified_at"
            " RETURNING device_id, last_seen",
            (now, silent_since),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]
