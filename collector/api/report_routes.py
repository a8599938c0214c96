"""Staff reports as JSON, CSV or Parquet (``format=json|csv|parquet``).

Role intent: read-only (any staff role). Every report is a table: JSON gives
``{"report", "columns", "rows": [{column: value}]}`` with decimals as exact strings; CSV and
Parquet are downloads named after the report.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import JSONResponse

from collector.access import Role
from collector.api.access import requires
from collector.errors import ValidationFailed
from collector.reports import Table, to_csv, to_parquet
from collector.reports.reconciliation import reconcile_period
from collector.storage import report_queries
from collector.storage.database import Pool

from .deps import get_pool

__all__ = ["router"]

router = APIRouter(prefix="/reports", tags=["reports"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]
PoolDep = Annotated[Pool, Depends(get_pool)]


class Format(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


FormatQ = Annotated[Format, Query()]
# Every report answers in the format asked for: declared so clients know all three.
EXPORTS: dict[int | str, dict[str, Any]] = {200: {"content": {
    "application/json": {}, "text/csv": {}, "application/vnd.apache.parquet": {},
}}}
FromQ = Annotated[datetime, Query(alias="from")]
ToQ = Annotated[datetime, Query(alias="to")]
PeriodQ = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")]


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except ValidationFailed as exc:
        raise HTTPException(422, str(exc)) from exc


def _json(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def _respond(table: Table, fmt: Format) -> Response:
    if fmt is Format.CSV:
        return Response(
            to_csv(table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{table.name}.csv"'},
        )
    if fmt is Format.PARQUET:
        return Response(
            to_parquet(table),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{table.name}.parquet"'},
        )
    return JSONResponse(
        {
            "report": table.name,
            "columns": list(table.columns),
            "rows": [{k: _json(v) for k, v in r.items()} for r in table.records()],
        }
    )


def _window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "from/to need a time zone offset")
    if not end > start:
        raise HTTPException(422, "to must be after from")


def _run(pool: Pool, fmt: Format, build: Callable[[Any], Table]) -> Response:
    with _http_errors(), pool.connection() as conn:
        table = build(conn)
    return _respond(table, fmt)


@router.get(
    "/revenue",
    dependencies=READ, responses=EXPORTS,
)
def revenue(
    *,
    pool: PoolDep,
    period_from: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
    period_to: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
    group_by: Annotated[str, Query()] = "period",
    drafts: bool = False,
    format: FormatQ = Format.JSON,
) -> Response:
    """Net revenue (rounded lines, tax excluded) per period, customer or plan and currency;
    final invoices only unless ``drafts``. Role intent: read-only."""
    return _run(
        pool,
        format,
        lambda c: report_queries.revenue(
            c, period_from, period_to, group_by=group_by, drafts=drafts
        ),
    )


@router.get(
    "/top-consumers",
    dependencies=READ, responses=EXPORTS,
)
def top_consumers(
    pool: PoolDep,
    start: FromQ,
    end: ToQ,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    format: FormatQ = Format.JSON,
) -> Response:
    """The customers with the most usage in the window, ranked per unit. Role intent:
    read-only."""
    _window(start, end)
    return _run(pool, format, lambda c: report_queries.top_consumers(c, start, end, limit=limit))


@router.get(
    "/unbilled",
    dependencies=READ, responses=EXPORTS,
)
def unbilled(pool: PoolDep, start: FromQ, end: ToQ, format: FormatQ = Format.JSON) -> Response:
    """Usage no final invoice covers: unsubscribed meters, and customers without a final
    invoice for the time. Role intent: read-only."""
    _window(start, end)
    return _run(pool, format, lambda c: report_queries.unbilled_usage(c, start, end))


@router.get(
    "/estimated",
    dependencies=READ, responses=EXPORTS,
)
def estimated(pool: PoolDep, start: FromQ, end: ToQ, format: FormatQ = Format.JSON) -> Response:
    """Meters with estimated usage, highest estimated share first. Role intent: read-only."""
    _window(start, end)
    return _run(pool, format, lambda c: report_queries.estimated_usage(c, start, end))


@router.get(
    "/device-health",
    dependencies=READ, responses=EXPORTS,
)
def device_health(pool: PoolDep, start: FromQ, end: ToQ, format: FormatQ = Format.JSON) -> Response:
    """Devices with reading gaps or dead letters in the window. Role intent: read-only."""
    _window(start, end)
    return _run(pool, format, lambda c: report_queries.device_health(c, start, end))


@router.get(
    "/reconciliation",
    dependencies=READ, responses=EXPORTS,
)
def reconciliation(pool: PoolDep, period: PeriodQ, format: FormatQ = Format.JSON) -> Response:
    """Each final invoice of ``period`` against its usage re-rated today: billed, later
    corrections, re-rated, and the unexplained difference. Role intent: read-only."""
    return _run(pool, format, lambda c: reconcile_period(c, period))
