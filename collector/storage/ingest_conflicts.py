"""Batch conflicts for staff: same ``(device, seq)`` as a stored batch, different readings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .database import Pool, translate_errors

__all__ = ["BatchConflict", "list_conflicts"]


@dataclass(frozen=True, slots=True)
class BatchConflict:
    id: int
    device_id: str
    seq: int
    received_at: datetime
    topic: str
    reading_count: int
    payload_size: int
    digest: str
    stored_digest: str | None
    reason: str


def list_conflicts(
    pool: Pool, *, device_id: str | None = None, limit: int = 100, before_id: int | None = None
) -> list[BatchConflict]:
    """Newest first, at most ``limit``; ``before_id`` pages further back."""
    with translate_errors("list batch conflicts"), pool.connection() as conn:
        rows = conn.execute(
            "SELECT id, device_id, seq, received_at, topic, reading_count, length(payload),"
            " encode(digest, 'hex'), encode(stored_digest, 'hex'), reason FROM batch_conflicts"
            " WHERE (%s::text IS NULL OR device_id = %s) AND (%s::bigint IS NULL OR id < %s)"
            " ORDER BY id DESC LIMIT %s",
            (device_id, device_id, before_id, before_id, limit),
        ).fetchall()
    return [BatchConflict(int(r[0]), str(r[1]), int(r[2]), r[3], str(r[4]), int(r[5]),
                          int(r[6]), str(r[7]), None if r[8] is None else str(r[8]), str(r[9]))
            for r in rows]
