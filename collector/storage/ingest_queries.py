"""Read side of ingest for the API: device ingest status, raw readings, dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from .archive_store import archived_entries, read_archived
from .database import Pool, translate_errors

__all__ = [
    "DeadLetterRow",
    "DeviceIngest",
    "DeviceStatusRow",
    "ReadingRow",
    "SeqGap",
    "dead_letters",
    "device_ingest",
    "list_devices",
    "meter_readings",
]

_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class SeqGap:
    """Missing batch sequence numbers ``first..last`` (inclusive)."""

    first: int
    last: int


@dataclass(frozen=True, slots=True)
class DeviceStatusRow:
    received_at: datetime
    state: str | None
    buffer_depth: int | None
    document: dict[str, Any]
    as_of: datetime  # the status document's own time (never after received_at)


@dataclass(frozen=True, slots=True)
class DeviceIngest:
    device_id: str
    batches: int
    readings: int
    first_seq: int | None
    last_seq: int | None
    last_seen: datetime | None
    series: int
    gaps: tuple[SeqGap, ...]
    missing_batches: int
    status: DeviceStatusRow | None
    confirmed_seq: int | None = None  # last seq of the unbroken run confirmed to the device
    confirmed_at: datetime | None = None
    skipped_batches: int = 0  # seqs the agent reported as dropped unsent (not gaps)


@dataclass(frozen=True, slots=True)
class ReadingRow:
    metric: str
    unit: str
    ts: datetime
    value: float


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    id: int
    received_at: datetime
    topic: str
    payload: bytes  # the first 64 KiB at most
    reason: str
    field: str | None
    payload_size: int
    payload_sha256: bytes


_DEVICE_SUMMARY = """
SELECT di.device_id, di.batches, di.readings, di.first_seq, di.last_seq, di.last_seen,
       (SELECT count(*) FROM series s WHERE s.device_id = di.device_id),
       di.confirmed_seq, di.confirmed_at
FROM device_ingest di WHERE di.device_id = %(device)s
"""

_GAPS = """
SELECT seq + 1, next_seq - 1 FROM (
    SELECT seq, lead(seq) OVER (ORDER BY seq) AS next_seq FROM (
        SELECT seq FROM batches WHERE device_id = %(device)s
        UNION SELECT seq FROM batch_skips WHERE device_id = %(device)s
    ) k
) s WHERE next_seq > seq + 1 ORDER BY seq LIMIT %(limit)s
"""
_SKIPS_WITHIN = """
SELECT count(*) FROM batch_skips k WHERE k.device_id = %(device)s
AND k.seq BETWEEN %(first)s AND %(last)s
AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.device_id = k.device_id AND b.seq = k.seq)
"""


def list_devices(pool: Pool, *, limit: int = 1000) -> list[DeviceIngest]:
    """Every device with batches or a status message, without gap details."""
    with translate_errors("list devices"), pool.connection(timeout=_TIMEOUT_S) as conn:
        rows = conn.execute(
            "SELECT coalesce(di.device_id, ds.device_id), coalesce(di.batches, 0),"
            " coalesce(di.readings, 0), di.first_seq, di.last_seq, di.last_seen,"
            " ds.received_at, ds.state, ds.buffer_depth, ds.payload, ds.as_of"
            " FROM device_ingest di FULL JOIN device_status ds USING (device_id)"
            " ORDER BY 1 LIMIT %s",
            (limit,),
        ).fetchall()
    out = []
    for r in rows:
        first, last, batches = r[3], r[4], int(r[1])
        missing = (last - first + 1 - batches) if first is not None else 0
        status = DeviceStatusRow(r[6], r[7], r[8], r[9], r[10]) if r[6] is not None else None
        out.append(
            DeviceIngest(r[0], batches, int(r[2]), first, last, r[5], 0, (), missing, status)
        )
    return out


def device_ingest(pool: Pool, device_id: str, *, max_gaps: int = 100) -> DeviceIngest | None:
    """Ingest status of one device; None when it never sent a batch nor a status."""
    with translate_errors("device ingest status"), pool.connection(timeout=_TIMEOUT_S) as conn:
        row = conn.execute(_DEVICE_SUMMARY, {"device": device_id}).fetchone()
        gaps = tuple(
            SeqGap(int(a), int(b))
            for a, b in conn.execute(_GAPS, {"device": device_id, "limit": max_gaps})
        )
        skips = 0
        if row is not None:
            found = conn.execute(
                _SKIPS_WITHIN, {"device": device_id, "first": row[3], "last": row[4]}
            ).fetchone()
            skips = int(found[0]) if found else 0
        st = conn.execute(
            "SELECT received_at, state, buffer_depth, payload, as_of FROM device_status"
            " WHERE device_id = %s",
            (device_id,),
        ).fetchone()
    status = DeviceStatusRow(st[0], st[1], st[2], st[3], st[4]) if st else None
    if row is None:
        if status is None:
            return None
        return DeviceIngest(device_id, 0, 0, None, None, None, 0, (), 0, status)
    _, batches, readings, first, last, seen, series, confirmed, confirmed_at = row
    missing = int(last) - int(first) + 1 - int(batches) - skips
    return DeviceIngest(
        device_id, int(batches), int(readings), first, last, seen, int(series), gaps, missing,
        status, confirmed, confirmed_at, skips,
    )


def meter_readings(
    pool: Pool,
    device_id: str,
    meter: str,
    *,
    metric: str | None,
    ts_from: datetime,
    ts_to: datetime,
    limit: int,
) -> list[ReadingRow]:
    """Raw readings of a meter in ``[ts_from, ts_to)``, by metric then time."""
    with translate_errors("meter readings"), pool.connection(timeout=_TIMEOUT_S) as conn:
        rows = conn.execute(
            "SELECT s.metric, s.unit, r.ts, r.value FROM series s"
            " JOIN readings r ON r.series_id = s.series_id"
            " WHERE s.device_id = %s AND s.meter = %s"
            " AND (%s::text IS NULL OR s.metric = %s::text)"
            " AND r.ts >= %s AND r.ts < %s"
            " ORDER BY s.metric, r.ts LIMIT %s",
            (device_id, meter, metric, metric, ts_from, ts_to, limit),
        ).fetchall()
        out = [ReadingRow(m, u, t, float(v)) for m, u, t, v in rows]
        if archived_entries(conn, ts_from, ts_to):  # months moved to the Parquet archive
            out = sorted(out + _archived(conn, device_id, meter, metric=metric,
                                         ts_from=ts_from, ts_to=ts_to),
                         key=lambda r: (r.metric, r.ts))[:limit]
    return out


def _archived(conn: psycopg.Connection[Any], device_id: str, meter: str, *, metric: str | None,
              ts_from: datetime, ts_to: datetime) -> list[ReadingRow]:
    series = {int(s): (str(m), str(u)) for s, m, u in conn.execute(
        "SELECT series_id, metric, unit FROM series WHERE device_id = %s AND meter = %s"
        " AND (%s::text IS NULL OR metric = %s::text)", (device_id, meter, metric, metric),
    ).fetchall()}
    if not series:
        return []
    rows = read_archived(conn, list(series), ts_from, ts_to)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return [
        ReadingRow(*series[int(s)], epoch + timedelta(microseconds=int(t)), float(v))
        for s, t, v in zip(rows.series_id, rows.ts_us, rows.value, strict=True)
        if epoch + timedelta(microseconds=int(t)) < ts_to
    ]


def dead_letters(pool: Pool, *, limit: int, before_id: int | None = None) -> list[DeadLetterRow]:
    """Newest dead letters first; page with ``before_id`` = the last id of the previous page."""
    with translate_errors("dead letters"), pool.connection(timeout=_TIMEOUT_S) as conn:
        rows = conn.execute(
            "SELECT id, received_at, topic, payload, reason, field, payload_size, payload_sha256"
            " FROM dead_letters"
            " WHERE %s::bigint IS NULL OR id < %s::bigint ORDER BY id DESC LIMIT %s",
            (before_id, before_id, limit),
        ).fetchall()
    return [DeadLetterRow(i, t, o, bytes(p), r, f, n, bytes(h))
            for i, t, o, p, r, f, n, h in rows]
