"""Ingest endpoints: health, devices and their ingest status, raw readings, dead letters."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from collector.access import Role
from collector.errors import StorageError
from collector.storage import ingest_queries as q
from collector.storage.database import Pool, ping
from collector.storage.metrics_queries import usage_refresh_backlog
from collector.storage.operations_jobs import timescale_jobs
from collector.upkeep import UpkeepTracker
from collector.usage_refresh import RefreshStats

from .access import public, requires
from .deps import get_pool
from .params import IdQuery, When

__all__ = ["IngestProbe", "router"]

router = APIRouter(tags=["ingest"])
READ = [requires(Role.READ_ONLY)]
PUBLIC = [public()]
PoolDep = Annotated[Pool, Depends(get_pool)]


@dataclass(frozen=True, slots=True)
class IngestProbe:
    """What the consumer reports for /health."""

    connected: bool
    pending: int
    lag_s: float
    last_flush_at: datetime | None
    storage_ok: bool
    batches: int
    readings: int
    dead_letters: int
    flushes: int = 0  # for /metrics: flush count and time spent storing them
    flush_seconds_total: float = 0.0
    flush_retries: int = 0  # flushes tried again (database unavailable or transaction aborted)
    deadlock_retries: int = 0  # of those: aborted by the database to break a deadlock
    usage_refresh: RefreshStats | None = None  # None: this process does not refresh usage


class ConsumerHealth(BaseModel):
    connected: bool
    pending_messages: int
    lag_s: float
    last_flush_at: datetime | None
    storage_ok: bool
    batches_stored: int
    readings_stored: int
    dead_letters: int


class UsageRefreshHealth(BaseModel):
    """How far interval usage trails ingest (``collector.usage_refresh``)."""

    passes: int
    failures: int
    last_pass_s: float | None
    # commit → visible of the oldest range the last pass derived
    last_freshness_s: float | None
    pending_ranges: int | None  # ranges queued now (None: database unreachable)
    pending_lag_s: float | None  # how long the oldest of them has waited


class UpkeepTaskHealth(BaseModel):
    task: str
    failing: bool
    runs: int
    failures: int
    consecutive_failures: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None


class TimescaleJobHealth(BaseModel):
    job_id: int
    name: str
    hypertable: str | None
    last_run_status: str | None
    last_run_at: datetime | None
    next_start: datetime | None
    total_failures: int
    last_error: str | None
    failing: bool
    overdue: bool
    scheduled: bool = True
    chunks_behind: int = 0


class Health(BaseModel):
    status: str  # "ok" or "degraded"
    database: bool
    consumer: ConsumerHealth | None
    usage_refresh: UsageRefreshHealth | None = None
    upkeep: list[UpkeepTaskHealth] = []
    timescale_jobs: list[TimescaleJobHealth] = []
    problems: list[str] = []


class SeqGapOut(BaseModel):
    first: int
    last: int


class StatusOut(BaseModel):
    received_at: datetime
    as_of: datetime  # the status document's own time ("ts"), never after received_at
    state: str | None
    buffer_depth: int | None
    message: dict[str, Any]


class DeviceIngestOut(BaseModel):
    device_id: str
    batches: int
    readings: int
    first_seq: int | None
    last_seq: int | None
    last_seen: datetime | None
    missing_batches: int
    series: int | None = None
    gaps: list[SeqGapOut] | None = None
    status: StatusOut | None
    confirmed_seq: int | None = None  # the device was told: durable up to here (end to end)
    confirmed_at: datetime | None = None
    skipped_batches: int | None = None  # dropped by the agent (drop_oldest), reported: no gap


class ReadingOut(BaseModel):
    metric: str
    unit: str
    ts: datetime
    value: float


class DeadLetterOut(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    field: str | None
    payload_base64: str
    payload_text: str | None
    payload_size: int
    payload_sha256: str
    truncated: bool


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_before: int | None


@router.get("/health", dependencies=PUBLIC, response_model=Health)
def health(request: Request, response: Response, pool: PoolDep) -> Health:
    """Database reachability; the consumer's connection, backlog and lag; how far interval
    usage trails ingest."""
    db = ping(pool)
    probe_fn = cast(Callable[[], IngestProbe] | None, request.app.state.ingest_probe)
    consumer = None
    usage = None
    ok = db
    if probe_fn is not None:
        p = probe_fn()
        consumer = ConsumerHealth(
            connected=p.connected, pending_messages=p.pending, lag_s=p.lag_s,
            last_flush_at=p.last_flush_at, storage_ok=p.storage_ok, batches_stored=p.batches,
            readings_stored=p.readings, dead_letters=p.dead_letters,
        )
        ok = ok and p.connected and p.storage_ok
        usage = _usage_refresh_health(pool, p.usage_refresh, db)
    problems: list[str] = []
    tracker = cast(UpkeepTracker | None, getattr(request.app.state, "upkeep", None))
    upkeep = [UpkeepTaskHealth(**asdict(t)) for t in tracker.snapshot()] if tracker else []
    problems += [f"{t.task} failing: {t.last_error}" for t in upkeep if t.failing]
    jobs: list[TimescaleJobHealth] = []
    if db:
        try:
            jobs = [TimescaleJobHealth(**asdict(j)) for j in timescale_jobs(pool)]
        except StorageError as exc:
            problems.append(f"cannot read TimescaleDB jobs: {exc}")
    problems += [
        f"TimescaleDB job {j.job_id} ({j.name}) "
        + ("failing: " + (j.last_error or j.last_run_status or "") if j.failing else "overdue")
        + (f" ({j.chunks_behind} chunks past its horizon not compressed)"
           if j.chunks_behind else "")
        for j in jobs if j.failing or j.overdue
    ]
    ok = ok and not problems
    if not ok:
        response.status_code = 503
    return Health(status="ok" if ok else "degraded", database=db, consumer=consumer,
                  usage_refresh=usage, upkeep=upkeep, timescale_jobs=jobs, problems=problems)


def _usage_refresh_health(
    pool: Pool, stats: RefreshStats | None, db: bool
) -> UsageRefreshHealth | None:
    if stats is None:
        return None
    pending: tuple[int, float] | None = None
    if db:
        try:
            with pool.connection(timeout=2.0) as conn:
                pending = usage_refresh_backlog(conn)
        except StorageError:
            pending = None
    return UsageRefreshHealth(
        passes=stats.passes, failures=stats.failures, last_pass_s=stats.last_pass_s,
        last_freshness_s=stats.last_freshness_s,
        pending_ranges=pending[0] if pending else None,
        pending_lag_s=pending[1] if pending else None,
    )


def _status(row: q.DeviceStatusRow | None) -> StatusOut | None:
    if row is None:
        return None
    return StatusOut(
        received_at=row.received_at, as_of=row.as_of, state=row.state,
        buffer_depth=row.buffer_depth,
        message=row.document,
    )


def _device(d: q.DeviceIngest, *, detail: bool) -> DeviceIngestOut:
    return DeviceIngestOut(
        device_id=d.device_id, batches=d.batches, readings=d.readings, first_seq=d.first_seq,
        last_seq=d.last_seq, last_seen=d.last_seen, missing_batches=d.missing_batches,
        series=d.series if detail else None,
        gaps=[SeqGapOut(first=g.first, last=g.last) for g in d.gaps] if detail else None,
        status=_status(d.status),
        confirmed_seq=d.confirmed_seq if detail else None,
        confirmed_at=d.confirmed_at if detail else None,
        skipped_batches=d.skipped_batches if detail else None,
    )


@router.get(
    "/devices",
    dependencies=READ,
    response_model=list[DeviceIngestOut],
    response_model_exclude_none=True,
)
def devices(
    pool: PoolDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> list[DeviceIngestOut]:
    """Every known device with its batch counters and latest status."""
    return [_device(d, detail=False) for d in q.list_devices(pool, limit=limit)]


@router.get("/devices/{device_id}/ingest", dependencies=READ, response_model=DeviceIngestOut)
def device_ingest(device_id: str, pool: PoolDep) -> DeviceIngestOut:
    """Ingest status of a device: counters, missing batch sequence ranges, latest status."""
    d = q.device_ingest(pool, device_id)
    if d is None:
        raise HTTPException(404, f"device {device_id!r} has sent nothing")
    return _device(d, detail=True)


@router.get(
    "/devices/{device_id}/meters/{meter}/readings",
    dependencies=READ,
    response_model=list[ReadingOut],
)
def meter_readings(
    device_id: str,
    meter: str,
    pool: PoolDep,
    *,
    ts_from: Annotated[When, Query(alias="from")],
    ts_to: Annotated[When, Query(alias="to")],
    metric: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[ReadingOut]:
    """Raw readings of a meter in [from, to), ordered by metric and time."""
    start, end = _aware(ts_from), _aware(ts_to)
    if end <= start:
        raise HTTPException(422, "'to' must be after 'from'")
    rows = q.meter_readings(
        pool, device_id, meter, metric=metric, ts_from=start, ts_to=end, limit=limit
    )
    return [ReadingOut(metric=r.metric, unit=r.unit, ts=r.ts, value=r.value) for r in rows]


@router.get("/dead-letters", dependencies=READ, response_model=DeadLetterPage)
def dead_letters(
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: IdQuery = None,
) -> DeadLetterPage:
    """Rejected messages, newest first; pass ``before=next_before`` for the next page."""
    rows = q.dead_letters(pool, limit=limit, before_id=before)
    items = [
        DeadLetterOut(
            id=r.id, received_at=r.received_at, topic=r.topic, reason=r.reason, field=r.field,
            payload_base64=base64.b64encode(r.payload).decode("ascii"),
            payload_text=_text(r.payload),
            payload_size=r.payload_size, payload_sha256=r.payload_sha256.hex(),
            truncated=len(r.payload) < r.payload_size,
        )
        for r in rows
    ]
    return DeadLetterPage(items=items, next_before=rows[-1].id if len(rows) == limit else None)


def _text(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
