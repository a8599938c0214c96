"""An in-memory ``EventSink`` for tests of code that emits events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from collector.webhooks.events import EventType

__all__ = ["EmittedEvent", "MemorySink"]


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    event_id: str
    event_type: EventType
    data: Mapping[str, Any]
    at: datetime
    customer_id: int | None


@dataclass
class MemorySink:
    """Records every emitted event in ``events`` (ignores the connection)."""

    events: list[EmittedEvent] = field(default_factory=list)

    def emit(
        self,
        conn: psycopg.Connection[Any],
        event_type: EventType | str,
        data: Mapping[str, Any],
        *,
        at: datetime,
        customer_id: int | None = None,
    ) -> str | None:
        del conn
        eid = f"msg_mem{len(self.events) + 1}"
        self.events.append(EmittedEvent(eid, EventType(event_type), dict(data), at, customer_id))
        return eid
