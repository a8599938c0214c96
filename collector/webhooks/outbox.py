"""The production ``EventSink``: the outbox tables, written in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg

from collector.storage import webhook_store
from collector.webhooks.events import EventType

__all__ = ["OutboxSink"]


class OutboxSink:
    """Emits into ``webhook_events`` + one ``webhook_deliveries`` row per interested endpoint."""

    def emit(
        self,
        conn: psycopg.Connection[Any],
        event_type: EventType | str,
        data: Mapping[str, Any],
        *,
        at: datetime,
        customer_id: int | None = None,
    ) -> str | None:
        return webhook_store.emit(conn, str(EventType(event_type)), data, at=at,
                                  customer_id=customer_id)
