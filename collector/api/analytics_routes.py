"""Usage analytics for staff: usage over time, period over period, load profile, TOU breakdown,
bill forecast with the running charge by charge.

Role intent: read-only (any staff role may call these). Every route takes a scope
(``scope=meter|site|customer|plan|fleet`` and ``id``), a window (``from``/``to`` with offsets)
and optionally ``unit`` (scopes mixing units need it) and ``tz`` (default: the customer's zone
for a customer scope, else UTC). Bad input is a 4xx with a reason, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from collector.access import Role
from collector.analytics import (
    Granularity,
    ScopeKind,
    UsageGrid,
    compare_periods,
    comparison_windows,
    downsample_curve,
    load_profile,
    timeline,
    tou_breakdown,
)
from collector.analytics.anomalies import detect_anomalies
from collector.analytics.bill_forecast import Priced
from collector.analytics.dashboard import customer_dashboard
from collector.analytics.forecasting import customer_bill_forecast
from collector.analytics.loading import (
    load_fleet_grid,
    load_grid,
    load_grid_pooled,
    load_meter_usage,
)
from collector.analytics.localtime import zone
from collector.api.access import requires
from collector.api.params import BodyId
from collector.billing.pricing import parse_plan_document
from collector.errors import AnalyticsError, NotFound, PlanError, ValidationFailed
from collector.storage import analytics_anomaly_store as anomaly_store
from collector.storage import analytics_store, billing_store
from collector.storage.analytics_store import ScopeSeries
from collector.storage.database import Pool

from .deps import get_pool

__all__ = ["router"]

router = APIRouter(prefix="/analytics", tags=["analytics"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]
PoolDep = Annotated[Pool, Depends(get_pool)]
MAX_WINDOW: Final = timedelta(days=3 * 366 + 1)
MAX_15M_BUCKETS: Final = 20_000
MAX_ANOMALY_CELLS: Final = 40_000_000  # meters x quarter hours held in memory at once


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except (AnalyticsError, ValidationFailed, PlanError) as exc:
        raise HTTPException(422, str(exc)) from exc


class Scope(BaseModel):
    """A scope query as parsed from the URL."""

    kind: ScopeKind
    ident: str | None
    unit: str | None
    start: datetime
    end: datetime
    tz: str | None


def _scope(
    *,
    scope: Annotated[ScopeKind, Query()],
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
    ident: Annotated[str | None, Query(alias="id", max_length=200)] = None,
    unit: Annotated[str | None, Query(max_length=32)] = None,
    tz: Annotated[str | None, Query(max_length=64)] = None,
) -> Scope:
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "from/to need a time zone offset (e.g. 2026-03-01T00:00Z)")
    if not end > start:
        raise HTTPException(422, "to must be after from")
    if end - start > MAX_WINDOW:
        raise HTTPException(422, "the window may span at most three years")
    if tz is not None:
        with _http_errors():
            zone(tz)
    return Scope(kind=scope, ident=ident, unit=unit, start=start, end=end, tz=tz)


ScopeDep = Annotated[Scope, Depends(_scope)]


def _resolve(pool: Pool, s: Scope) -> tuple[ScopeSeries, str]:
    with _http_errors(), pool.connection() as conn:
        found = analytics_store.scope_series(conn, s.kind, s.ident, s.start, s.end, unit=s.unit)
    return found, s.tz or found.tz or "UTC"


def _grid(pool: Pool, found: ScopeSeries, start: datetime, end: datetime) -> UsageGrid:
    with _http_errors():
        if found.fleet:
            with pool.connection() as conn:
                return load_fleet_grid(conn, found.unit, start, end)
        return load_grid_pooled(pool, found.windows, start, end)


def _t(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class ScopeOut(BaseModel):
    scope: str
    id: str | None
    unit: str | None
    tz: str
    series_count: int
    start: datetime
    end: datetime


def _scope_out(s: Scope, found: ScopeSeries, tz: str) -> ScopeOut:
    return ScopeOut(
        scope=s.kind.value,
        id=s.ident,
        unit=found.unit,
        tz=tz,
        series_count=len(found.series_ids),
        start=s.start,
        end=s.end,
    )


class BucketOut(BaseModel):
    start: datetime
    end: datetime
    quantity: float
    measured: float
    estimated: float


class UsageOverTimeOut(BaseModel):
    scope: ScopeOut
    granularity: str
    total: float
    measured: float
    estimated: float
    estimated_share: float
    buckets: list[BucketOut]


@router.get("/usage", dependencies=READ, response_model=UsageOverTimeOut)
def usage_over_time(
    pool: PoolDep, s: ScopeDep, granularity: Annotated[Granularity, Query()] = Granularity.D1
) -> UsageOverTimeOut:
    """Usage of the scope per bucket (15m/1h/1d/1w/1mo/1y in ``tz``), measured vs estimated.
    Role intent: read-only."""
    if granularity is Granularity.M15 and (s.end - s.start) / timedelta(minutes=15) > (
        MAX_15M_BUCKETS
    ):
        raise HTTPException(422, f"too many buckets (max {MAX_15M_BUCKETS}); use a coarser one")
    found, tz = _resolve(pool, s)
    grid = _grid(pool, found, s.start, s.end)
    with _http_errors():
        tl = timeline(grid, granularity, tz)
    total, est = tl.total, tl.total_estimated
    return UsageOverTimeOut(
        scope=_scope_out(s, found, tz),
        granularity=granularity.value,
        total=total,
        measured=total - est,
        estimated=est,
        estimated_share=est / total if total > 0 else 0.0,
        buckets=[
            BucketOut(
                start=_t(int(a)),
                end=_t(int(b)),
                quantity=float(q),
                measured=float(q - e),
                estimated=float(e),
            )
            for a, b, q, e in zip(tl.starts, tl.ends, tl.quantity, tl.estimated, strict=True)
        ],
    )


class WindowOut(BaseModel):
    start: datetime
    end: datetime
    total: float


class CompareOut(BaseModel):
    scope: ScopeOut
    current: WindowOut
    previous: WindowOut
    year_ago: WindowOut
    current_estimated: float
    change_vs_previous: float | None
    change_vs_year_ago: float | None


@router.get("/compare", dependencies=READ, response_model=CompareOut)
def period_over_period(pool: PoolDep, s: ScopeDep) -> CompareOut:
    """This window vs the previous one vs the same window a year earlier (local calendar:
    a whole month compares with the month before). Role intent: read-only."""
    found, tz = _resolve(pool, s)
    with _http_errors():
        w = comparison_windows(s.start, s.end, tz)
    grids = [_grid(pool, found, a, b) for a, b in (w.current, w.previous, w.year_ago)]
    c = compare_periods(*grids)

    def out(win: tuple[datetime, datetime], total: float) -> WindowOut:
        return WindowOut(start=win[0].astimezone(UTC), end=win[1].astimezone(UTC), total=total)

    return CompareOut(
        scope=_scope_out(s, found, tz),
        current=out(w.current, c.current),
        previous=out(w.previous, c.previous),
        year_ago=out(w.year_ago, c.year_ago),
        current_estimated=c.current_estimated,
        change_vs_previous=c.change_vs_previous,
        change_vs_year_ago=c.change_vs_year_ago,
    )


class PeakOut(BaseModel):
    demand_per_hour: float
    start: datetime
    end: datetime


class ProfileOut(BaseModel):
    scope: ScopeOut
    weekday: list[float | None]
    weekend: list[float | None]
    heat_days: list[str]
    heat: list[list[float]]
    duration_share: list[float]
    duration_demand_per_hour: list[float]
    peak: PeakOut | None
    average_demand_per_hour: float
    load_factor: float


def _nan_none(a: Any) -> list[float | None]:
    return [None if np.isnan(x) else float(x) for x in a]


@router.get("/profile", dependencies=READ, response_model=ProfileOut)
def profile(
    pool: PoolDep, s: ScopeDep, points: Annotated[int, Query(ge=2, le=2000)] = 100
) -> ProfileOut:
    """Average day (weekday/weekend, per local quarter hour), hour × day heat map, load-duration
    curve (``points`` samples), peak demand and when, load factor. Role intent: read-only."""
    found, tz = _resolve(pool, s)
    grid = _grid(pool, found, s.start, s.end)
    with _http_errors():
        lp = load_profile(grid, tz)
    share, demand = downsample_curve(lp.duration, points)
    return ProfileOut(
        scope=_scope_out(s, found, tz),
        weekday=_nan_none(lp.weekday),
        weekend=_nan_none(lp.weekend),
        heat_days=[d.isoformat() for d in lp.heat_days],
        heat=[[float(x) for x in row] for row in lp.heat],
        duration_share=[float(x) for x in share],
        duration_demand_per_hour=[float(x) for x in demand],
        peak=None
        if lp.peak is None
        else PeakOut(demand_per_hour=lp.peak.demand, start=_t(lp.peak.start), end=_t(lp.peak.end)),
        average_demand_per_hour=lp.average_demand,
        load_factor=lp.load_factor,
    )


class TouOut(BaseModel):
    plan_version_id: BodyId
    plan: str
    time_zone: str
    periods: dict[str, float]
    estimated: dict[str, float]


class TouBreakdownOut(BaseModel):
    scope: ScopeOut
    breakdowns: list[TouOut]


@router.get("/tou", dependencies=READ, response_model=TouBreakdownOut)
def tou(
    pool: PoolDep,
    s: ScopeDep,
    plan_version_id: Annotated[int | None, Query(ge=1)] = None,
) -> TouBreakdownOut:
    """Usage per time-of-use period: of ``plan_version_id``'s schedule for the whole scope, or
    (customer and plan scopes) of each subscribed plan version's schedule for the meters on it.
    Plans without a schedule are skipped. Role intent: read-only."""
    found, tz = _resolve(pool, s)
    groups: dict[int, list[int]] = {}
    if plan_version_id is not None:
        groups[plan_version_id] = list(range(len(found.windows)))
    else:
        for i, pv in enumerate(found.plan_versions):
            if pv is not None:
                groups.setdefault(pv, []).append(i)
        if not groups:
            raise HTTPException(422, "this scope has no plan; pass plan_version_id")
    out: list[TouOut] = []
    with _http_errors(), pool.connection() as conn:
        versions = {v.plan_version_id: v for v in billing_store.plan_versions(conn, list(groups))}
        for pv, idx in sorted(groups.items()):
            if pv not in versions:
                raise NotFound(f"plan version {pv} does not exist")
            plan = parse_plan_document(versions[pv].document)
            if plan.schedule is None:
                continue
            if found.fleet:  # a plan's schedule over the whole fleet: the rollup
                grid = load_fleet_grid(conn, found.unit, s.start, s.end)
            else:
                grid = load_grid(conn, [found.windows[i] for i in idx], s.start, s.end)
            b = tou_breakdown(grid, plan)
            out.append(
                TouOut(
                    plan_version_id=pv,
                    plan=plan.id,
                    time_zone=plan.time_zone,
                    periods=dict(zip(b.periods, b.quantity, strict=True)),
                    estimated=dict(zip(b.periods, b.estimated, strict=True)),
                )
            )
    return TouBreakdownOut(scope=_scope_out(s, found, tz), breakdowns=out)


class PricedOut(BaseModel):
    """A usage scenario priced as the invoice: amounts are exact decimal strings."""

    quantity: float
    subtotal: str
    tax: str
    total: str
    charges: dict[str, str]


class ForecastOut(BaseModel):
    customer_id: BodyId
    period: str
    currency: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    to_date: PricedOut
    expected: PricedOut
    low: PricedOut
    high: PricedOut
    linear: PricedOut
    patterned: bool


def _priced(p: Priced) -> PricedOut:
    return PricedOut(
        quantity=p.quantity,
        subtotal=str(p.subtotal),
        tax=str(p.tax),
        total=str(p.total),
        charges={c.charge_id: str(c.amount) for c in p.charges},
    )


def _clock(request: Request) -> datetime:
    clock = getattr(request.app.state, "clock", None)
    return clock() if callable(clock) else datetime.now(UTC)


@router.get("/forecast", dependencies=READ, response_model=ForecastOut)
def forecast(
    request: Request,
    pool: PoolDep,
    customer_id: Annotated[int, Query(ge=1)],
    at: Annotated[datetime | None, Query()] = None,
) -> ForecastOut:
    """The customer's bill for the period containing ``at`` (default now): the running charge
    (usage so far), the forecast from its meters' weekday/hour pattern with a range, Lago's
    linear projection for comparison, each with its amount per charge. Role intent: read-only.
    """
    now = at or _clock(request)
    if now.tzinfo is None:
        raise HTTPException(422, "at needs a time zone offset")
    with _http_errors(), pool.connection() as conn:
        f = customer_bill_forecast(conn, customer_id, now)
    return ForecastOut(
        customer_id=customer_id,
        period=f.period,
        currency=f.currency,
        period_start=f.period_start,
        period_end=f.period_end,
        as_of=f.as_of,
        to_date=_priced(f.to_date),
        expected=_priced(f.expected),
        low=_priced(f.low),
        high=_priced(f.high),
        linear=_priced(f.linear),
        patterned=f.patterned,
    )


class AnomalyOut(BaseModel):
    series_id: BodyId
    kind: str
    start: datetime
    end: datetime
    reason: str
    facts: dict[str, float]


class AnomaliesOut(BaseModel):
    scope: ScopeOut
    now: datetime
    anomalies: list[AnomalyOut]


@router.get("/anomalies", dependencies=READ, response_model=AnomaliesOut)
def anomalies(request: Request, pool: PoolDep, s: ScopeDep) -> AnomaliesOut:
    """Anomalies of the scope's meters in the window (leak, jump, silent, usage while vacant,
    reverse flow, estimated share), each with a reason and its numbers. Jumps compare each day
    with the 28 days before it inside the window, so ask for six weeks or more. A meter is
    silent if its last reading is 6 hours or more before the window's end (or now, if
    earlier). Role intent: read-only."""
    found, tz = _resolve(pool, s)
    cells = len(found.series_ids) * (s.end - s.start) / timedelta(minutes=15)
    if cells > MAX_ANOMALY_CELLS:
        raise HTTPException(
            422,
            f"{len(found.series_ids)} meters over this window is too much at once"
            f" (meters x quarter hours <= {MAX_ANOMALY_CELLS:,}); narrow the scope or window",
        )
    now = min(s.end, _clock(request))
    with _http_errors(), pool.connection() as conn:
        usage = load_meter_usage(conn, found.windows, s.start, s.end)
        result = detect_anomalies(usage, tz=tz, now=int(now.timestamp()))
    return AnomaliesOut(
        scope=_scope_out(s, found, tz),
        now=now,
        anomalies=[
            AnomalyOut(
                series_id=a.series_id,
                kind=a.kind.value,
                start=_t(a.start),
                end=_t(a.end),
                reason=a.reason,
                facts=dict(a.facts),
            )
            for a in result
        ],
    )


class VacancyIn(BaseModel):
    device_id: str = Field(min_length=1, max_length=200)
    vacant_from: datetime
    vacant_to: datetime | None = None
    note: str | None = Field(None, max_length=500)


class VacancyOut(VacancyIn):
    vacancy_id: BodyId


@router.post("/vacancies", dependencies=BILLING, response_model=VacancyOut, status_code=201)
def add_vacancy(pool: PoolDep, body: VacancyIn) -> VacancyOut:
    """Mark a site (device) vacant from ``vacant_from`` to ``vacant_to`` (open if omitted):
    usage then is an anomaly. Role intent: billing (changes what staff are alerted to)."""
    if body.vacant_from.tzinfo is None or (
        body.vacant_to is not None and body.vacant_to.tzinfo is None
    ):
        raise HTTPException(422, "times need a time zone offset")
    with _http_errors(), pool.connection() as conn:
        v = anomaly_store.add_vacancy(
            conn, body.device_id, body.vacant_from, body.vacant_to, body.note
        )
    return VacancyOut(
        vacancy_id=v.vacancy_id,
        device_id=v.device_id,
        vacant_from=v.vacant_from,
        vacant_to=v.vacant_to,
        note=v.note,
    )


@router.get("/vacancies", dependencies=READ, response_model=list[VacancyOut])
def list_vacancies(
    pool: PoolDep, device_id: Annotated[str, Query(min_length=1, max_length=200)]
) -> list[VacancyOut]:
    """The vacancies of a site (device). Role intent: read-only."""
    with _http_errors(), pool.connection() as conn:
        rows = anomaly_store.list_vacancies(conn, device_id)
    return [
        VacancyOut(
            vacancy_id=v.vacancy_id,
            device_id=v.device_id,
            vacant_from=v.vacant_from,
            vacant_to=v.vacant_to,
            note=v.note,
        )
        for v in rows
    ]


class DayOut(BaseModel):
    start: datetime
    end: datetime
    quantity: float
    estimated: float


class DashboardOut(BaseModel):
    customer_id: BodyId
    period: str
    tz: str
    days: list[DayOut]
    so_far: float
    same_days_last_period: float
    forecast: ForecastOut


@router.get("/dashboard", dependencies=READ, response_model=DashboardOut)
def dashboard(
    request: Request,
    pool: PoolDep,
    customer_id: Annotated[int, Query(ge=1)],
    at: Annotated[datetime | None, Query()] = None,
) -> DashboardOut:
    """A customer's dashboard: the period so far per local day, the same elapsed time of the
    previous period, the running charge and the forecast (one read of the customer's meters).
    Role intent: read-only."""
    now = at or _clock(request)
    if now.tzinfo is None:
        raise HTTPException(422, "at needs a time zone offset")
    with _http_errors(), pool.connection() as conn:
        d = customer_dashboard(conn, customer_id, now)
    f = d.forecast
    return DashboardOut(
        customer_id=customer_id,
        period=d.period,
        tz=d.tz,
        days=[
            DayOut(start=_t(int(a)), end=_t(int(b)), quantity=float(q), estimated=float(e))
            for a, b, q, e in zip(
                d.days.starts, d.days.ends, d.days.quantity, d.days.estimated, strict=True
            )
        ],
        so_far=d.so_far,
        same_days_last_period=d.same_days_last_period,
        forecast=ForecastOut(
            customer_id=customer_id,
            period=f.period,
            currency=f.currency,
            period_start=f.period_start,
            period_end=f.period_end,
            as_of=f.as_of,
            to_date=_priced(f.to_date),
            expected=_priced(f.expected),
            low=_priced(f.low),
            high=_priced(f.high),
            linear=_priced(f.linear),
            patterned=f.patterned,
        ),
    )
