"""The fleet view of one device (pure): registry state joined with its last status and ingest.

Online/offline comes from the agent's retained status: ``online`` documents while it runs, the
``offline`` last will the broker publishes when the connection is lost (or the agent's own
farewell). A status older than ``stale_after`` is reported as ``stale`` whatever it says. The
clock offset is the agent's clock minus the collector's at the moment the status was received
(positive: the device runs ahead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["FleetEntry", "fleet_entry"]


@dataclass(frozen=True, slots=True)
class FleetEntry:
    device_id: str
    customer_id: str
    site: str
    state: str  # registry: active / decommissioned
    connection: str  # online / offline / stale / never
    last_seen: datetime | None  # last batch or status, whichever is later
    last_status_at: datetime | None
    buffer_depth: int | None
    clock_offset_ms: int | None
    agent_version: str | None
    config_version: int  # what the collector last published
    running_config_version: int | None  # what the agent reports running
    batches: int
    readings: int


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def fleet_entry(
    *, device_id: str, customer_id: str, site: str, state: str, config_version: int,
    status_at: datetime | None, status: dict[str, Any] | None, last_batch_at: datetime | None,
    batches: int, readings: int, now: datetime, stale_after: timedelta,
) -> FleetEntry:
    doc = status or {}
    if status_at is None:
        connection = "never"
    elif now - status_at > stale_after and doc.get("state") == "online":
        connection = "stale"
    else:
        connection = "online" if doc.get("state") == "online" else "offline"
    ts = _int(doc.get("ts"))
    offset = None
    if ts is not None and status_at is not None:
        offset = ts - round(status_at.timestamp() * 1000)
    seen = [t for t in (status_at, last_batch_at) if t is not None]
    agent = doc.get("agent")
    return FleetEntry(
        device_id=device_id, customer_id=customer_id, site=site, state=state,
        connection=connection, last_seen=max(seen) if seen else None, last_status_at=status_at,
        buffer_depth=_int(doc.get("buffer_depth")), clock_offset_ms=offset,
        agent_version=agent if isinstance(agent, str) else None,
        config_version=config_version,
        running_config_version=_int(doc.get("config_version")),
        batches=batches, readings=readings,
    )
