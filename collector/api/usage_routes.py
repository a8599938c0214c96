"""Usage endpoints: interval usage per series/meter with estimated shares; meter settings.

Routes call the storage layer only (``collector.storage.usage_queries`` / ``usage_meters``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from collector.access import Role
from collector.errors import NotFound, UsageError
from collector.storage import usage_meters, usage_queries
from collector.storage.database import Pool
from collector.usage import MeterConfig, Replacement, Resolution, UsageFlag

from .access import requires
from .deps import get_pool
from .params import Id, When

__all__ = ["router"]

router = APIRouter(tags=["usage"])
READ = [requires(Role.READ_ONLY)]
TECHNICIAN = [requires(Role.TECHNICIAN)]
PoolDep = Annotated[Pool, Depends(get_pool)]
MAX_BUCKETS: Final = 20_000
# The shortest bucket of each resolution (a month has at least 28 days): the bound on how many
# buckets one response can hold, whatever the resolution.
_BUCKET_S: Final = {Resolution.M15: 900, Resolution.H1: 3600, Resolution.D1: 23 * 3600,
                    Resolution.MO1: 28 * 86_400}


def _now(request: Request) -> datetime:
    """The app's clock (``app.state.clock``, a callable) or the wall clock."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if callable(clock) else datetime.now(UTC)


NowDep = Annotated[datetime, Depends(_now)]


class BucketOut(BaseModel):
    start: datetime
    end: datetime
    quantity: float
    estimated: float
    estimated_share: float
    quarantined: float
    coverage: float
    reading_count: int
    flags: list[str]
    peak: float | None


class UsageOut(BaseModel):
    series_id: int
    device_id: str
    meter: str
    metric: str
    unit: str
    kind: str
    resolution: str
    tz: str
    start: datetime
    end: datetime
    total: float
    total_estimated: float
    estimated_share: float
    total_quarantined: float
    buckets: list[BucketOut]


class ConfigIn(BaseModel):
    """Meter settings (see docs/usage.md); omitted fields take their defaults."""

    expected_interval_s: float = Field(900.0, gt=0)
    register_max: float | None = Field(None, gt=0)
    max_rate_per_hour: float | None = Field(None, gt=0)
    gap_factor: float = Field(2.5, ge=1)
    short_gap_s: float = Field(3600.0, ge=0)
    max_gap_s: float = Field(31 * 86400.0, gt=0)
    profile_weeks: int = Field(3, ge=0, le=52)
    glitch_window: int = Field(3, ge=0, le=100)
    jitter_tolerance: float = Field(0.0, ge=0)
    counter_kind: Literal["register", "software"] = "register"


class ReplacementIn(BaseModel):
    at: When
    old_final: float = Field(ge=0, allow_inf_nan=False)
    new_initial: float = Field(ge=0, allow_inf_nan=False)
    note: str | None = Field(None, max_length=500)


def _share(est: float, qty: float) -> float:
    return est / qty if qty > 0 else 0.0


def _flags(bits: int) -> list[str]:
    return [f.name for f in UsageFlag if f.value and bits & f.value and f.name]


def _window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    end = end or now
    start = start or end - timedelta(days=1)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "from/to need a time zone offset (e.g. 2026-03-01T00:00Z)")
    if not end > start:
        raise HTTPException(422, "to must be after from")
    return start, end


def _check_span(start: datetime, end: datetime, resolution: Resolution) -> None:
    if (end - start).total_seconds() / _BUCKET_S[resolution] > MAX_BUCKETS:
        raise HTTPException(
            422, f"too many {resolution.value} buckets (at most {MAX_BUCKETS} per response); "
            "use a shorter range or a coarser resolution",
        )


def _usage(pool: Pool, info: usage_queries.SeriesInfo, start: datetime, end: datetime, *,
           resolution: Resolution, tz: str) -> UsageOut:
    try:
        with pool.connection() as conn:
            u = usage_queries.usage_for_series(
                conn, [info.series_id], start, end, resolution=resolution, tz=tz)
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from exc
    q, e = u.quantity[0], u.estimated[0]
    buckets = [
        BucketOut(
            start=datetime.fromtimestamp(int(u.starts[j]), UTC),
            end=datetime.fromtimestamp(int(u.ends[j]), UTC),
            quantity=float(q[j]),
            estimated=float(e[j]),
            estimated_share=_share(float(e[j]), float(q[j])),
            quarantined=float(u.quarantined[0, j]),
            coverage=float(u.coverage[0, j]),
            reading_count=int(u.reading_count[0, j]),
            flags=_flags(int(u.flags[0, j])),
            peak=None if np.isnan(u.peak[0, j]) else float(u.peak[0, j]),
        )
        for j in range(q.shape[0])
    ]
    total, total_est = float(q.sum()), float(e.sum())
    return UsageOut(
        series_id=info.series_id, device_id=info.device_id, meter=info.meter,
        metric=info.metric, unit=info.unit if info.kind != "gauge" else f"{info.unit}·h",
        kind=info.kind, resolution=resolution.value, tz=tz, start=start, end=end,
        total=total, total_estimated=total_est, estimated_share=_share(total_est, total),
        total_quarantined=float(u.quarantined.sum()), buckets=buckets,
    )


FromQ = Annotated[When | None, Query(alias="from")]
ToQ = Annotated[When | None, Query(alias="to")]
ResQ = Annotated[Resolution, Query()]
TzQ = Annotated[str, Query(max_length=64)]


@router.get("/usage/series/{series_id}", dependencies=READ, response_model=UsageOut)
def series_usage(series_id: Id, pool: PoolDep, now: NowDep, *, from_: FromQ = None,
                 to: ToQ = None, resolution: ResQ = Resolution.H1, tz: TzQ = "UTC") -> UsageOut:
    """Usage of one series per bucket, with the estimated share per bucket and in total."""
    start, end = _window(from_, to, now)
    _check_span(start, end, resolution)
    with pool.connection() as conn:
        info = usage_queries.series_info(conn, series_id)
    if info is None:
        raise HTTPException(404, f"series {series_id} not found")
    return _usage(pool, info, start, end, resolution=resolution, tz=tz)


@router.get("/devices/{device}/meters/{meter}/usage", dependencies=READ, response_model=UsageOut)
def meter_usage(device: str, meter: str, pool: PoolDep, now: NowDep, *,
                metric: Annotated[str, Query(min_length=1)], from_: FromQ = None,
                to: ToQ = None, resolution: ResQ = Resolution.H1, tz: TzQ = "UTC") -> UsageOut:
    """Usage of a device's meter metric (e.g. ``metric=energy_import``)."""
    start, end = _window(from_, to, now)
    _check_span(start, end, resolution)
    with pool.connection() as conn:
        info = usage_queries.find_series(conn, device, meter, metric)
    if info is None:
        raise HTTPException(404, f"no series {device}/{meter}/{metric}")
    return _usage(pool, info, start, end, resolution=resolution, tz=tz)


@router.get("/meters/{series_id}/config", dependencies=READ, response_model=ConfigIn)
def get_config(series_id: Id, pool: PoolDep) -> dict[str, Any]:
    """The meter settings used to derive the series' usage."""
    try:
        with pool.connection() as conn:
            cfg = usage_meters.meter_config(conn, series_id)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return {f: getattr(cfg, f) for f in ConfigIn.model_fields}


@router.put("/meters/{series_id}/config", dependencies=TECHNICIAN, response_model=ConfigIn)
def put_config(series_id: Id, body: ConfigIn, pool: PoolDep, now: NowDep) -> ConfigIn:
    """Replace the meter settings (staff); the series' usage is re-derived on next refresh."""
    try:
        cfg = MeterConfig(**body.model_dump())
        with pool.connection() as conn:
            usage_meters.put_meter_config(conn, series_id, cfg, now)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from exc
    return body


@router.post(
    "/meters/{series_id}/replacements",
    dependencies=TECHNICIAN,
    status_code=201,
    response_model=ReplacementIn,
)
def post_replacement(series_id: Id, body: ReplacementIn, pool: PoolDep,
                     now: NowDep) -> ReplacementIn:
    """Record a meter swap (staff): old meter's final and new meter's first register value."""
    if body.at.tzinfo is None:
        raise HTTPException(422, "at needs a time zone offset")
    rep = Replacement(body.at.timestamp(), body.old_final, body.new_initial)
    try:
        with pool.connection() as conn:
            usage_meters.add_replacement(conn, series_id, rep, now, body.note)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except UsageError as exc:
        raise HTTPException(409, str(exc)) from exc
    return body
