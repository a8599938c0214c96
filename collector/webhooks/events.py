"""Webhook event types and the port that emits them.

Emitting is one call on a small port, in the caller's transaction (the outbox pattern: the
event exists if and only if what it announces was committed)::

    sink.emit(conn, EventType.ENROLLMENT_DONE, {"device_id": "m-1"}, at=now)

``OutboxSink`` (``collector.webhooks.outbox``) writes the outbox tables; ``MemorySink``
(``collector.webhooks.memory``) records events for tests.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import psycopg

__all__ = ["EventSink", "EventType"]


class EventType(enum.StrEnum):
    """Every event a webhook endpoint can subscribe to (docs/webhooks.md)."""

    ALERT_TRIGGERED = "alert.triggered"
    INVOICE_DRAFTED = "invoice.drafted"
    INVOICE_FINALIZED = "invoice.finalized"
    INVOICE_CORRECTED = "invoice.corrected"
    DEVICE_OFFLINE = "device.offline"
    ENROLLMENT_DONE = "enrollment.done"
    DEVICE_DECOMMISSIONED = "device.decommissioned"


class EventSink(Protocol):
    """Where events go. ``emit`` runs inside the caller's transaction on ``conn`` and returns
    the event id (``None`` when no endpoint wants the event)."""

    def emit(
        self,
        conn: psycopg.Connection[Any],
        event_type: EventType | str,
        data: Mapping[str, Any],
        *,
        at: datetime,
        customer_id: int | None = None,
    ) -> str | None: ...
