"""The fleet query: registered devices with their last status and ingest counters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from collector.devices.fleet import FleetEntry, fleet_entry

from .database import Pool, translate_errors

__all__ = ["fleet"]


def fleet(
    pool: Pool, now: datetime, *, stale_after: timedelta = timedelta(minutes=5),
    device_id: str | None = None,
) -> list[FleetEntry]:
    with translate_errors("fleet view"), pool.connection() as conn:
        rows = conn.execute(
            "SELECT d.device_id, d.customer_id, d.site, d.state, d.config_version,"
            " st.received_at, st.payload, di.last_seen, coalesce(di.batches, 0),"
            " coalesce(di.readings, 0)"
            " FROM devices d"
            " LEFT JOIN device_status st ON st.device_id = d.device_id"
            " LEFT JOIN device_ingest di ON di.device_id = d.device_id"
            " WHERE %s::text IS NULL OR d.device_id = %s"
            " ORDER BY d.device_id",
            (device_id, device_id),
        ).fetchall()
    out = []
    for r in rows:
        payload: Any = r[6]
        out.append(fleet_entry(
            device_id=str(r[0]), customer_id=str(r[1]), site=str(r[2]), state=str(r[3]),
            config_version=int(r[4]), status_at=r[5],
            status=payload if isinstance(payload, dict) else None,
            last_batch_at=r[7], batches=int(r[8]), readings=int(r[9]),
            now=now, stale_after=stale_after,
        ))
    return out
