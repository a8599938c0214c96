"""Billing API, operations: period close/refresh/finalize runs, invoices and documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from collector.access import Role
from collector.billing import documents
from collector.billing import serialize as out
from collector.billing.close import (
    CloseConfig,
    begin_run,
    close_period,
    finalize_period,
    refresh_period,
)
from collector.billing.finalize_guard import force_reason
from collector.billing.finalizing import check_period, finalize_one
from collector.billing.model import InvoiceStatus
from collector.billing.periods import PeriodKey
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_run_store as runs

from .access import requires
from .billing_http import BodyModel, Conn, KeyHeader, PoolDep, dump, http_errors, idempotent
from .params import Id, IdQuery, When

__all__ = ["router"]

router = APIRouter(tags=["billing"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]


class RunIn(BodyModel):
    chunk_size: int = Field(1000, ge=1, le=100_000)
    grace_hours: float = Field(72.0, ge=0, le=24 * 366, allow_inf_nan=False)
    horizon_days: float = Field(92.0, ge=0, le=3660, allow_inf_nan=False)
    force: bool = False
    reason: str | None = None  # required with force on finalize; recorded on the invoices
    now: When | None = None  # for back-dated runs and tests; default: the server clock

    def config(self) -> CloseConfig:
        return CloseConfig(
            chunk_size=self.chunk_size,
            grace=timedelta(hours=self.grace_hours),
            correction_horizon=timedelta(days=self.horizon_days),
        )


# -- period close runs -------------------------------------------------------------------------


@router.post("/billing/periods/{period}/{action}", dependencies=BILLING, status_code=202)
def start_run(
    period: str,
    action: Literal["close", "refresh", "finalize"],
    body: RunIn,
    *,
    request: Request,
    background: BackgroundTasks,
    pool: PoolDep,
    key: KeyHeader = None,
) -> JSONResponse:
    """Start (or resume) a close/refresh/finalize run in the background; poll ``/billing/runs``.

    A finalize before the period (and each of its drafts) has ended plus ``grace_hours`` is
    refused with 409 unless ``force`` with a ``reason``. Role: billing."""
    with http_errors():
        pkey = PeriodKey.parse(period)
        cfg = body.config()
        forced = force_reason(body.force, body.reason) if action == "finalize" else None
    now = body.now or datetime.now(UTC)

    def op(conn: Conn) -> tuple[int, Any]:
        if action == "finalize":
            check_period(conn, pkey, now, grace=cfg.grace, forced=forced)
        run = begin_run(pool, pkey, action, now)
        if run.status == "running":
            if action == "finalize":
                background.add_task(finalize_period, pool, pkey, now, cfg, forced=forced)
            else:
                fn = close_period if action == "close" else refresh_period
                background.add_task(fn, pool, pkey, now, cfg)
        return (202 if run.status == "running" else 200), out.run_out(run)

    return idempotent(pool, request, key, {"period": period, "action": action, **dump(body)}, op)


@router.get("/billing/periods/{period}", dependencies=READ)
def period_status(period: str, pool: PoolDep) -> dict[str, Any]:
    """Invoice counts (draft/final) and the runs of a period."""
    with http_errors():
        key = str(PeriodKey.parse(period))
    with http_errors(), pool.connection() as conn:
        counts = invoices.status_counts(conn, key)
        period_runs = runs.list_runs(conn, key)
    return {"period": key, "invoices": counts, "runs": [out.run_out(r) for r in period_runs]}


@router.get("/billing/runs/{run_id}", dependencies=READ)
def get_run(run_id: Id, pool: PoolDep) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        return out.run_out(runs.get_run(conn, run_id))


# -- invoices ----------------------------------------------------------------------------------


@router.get("/invoices", dependencies=READ)
def list_invoices(
    *,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    customer_id: IdQuery = None,
    period: str | None = None,
    status: Literal["draft", "final"] | None = None,
) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        page = invoices.list_invoices(
            conn,
            limit=limit,
            cursor=cursor,
            customer_id=customer_id,
            period=period,
            status=InvoiceStatus(status) if status else None,
        )
    return {"items": [out.invoice_summary(i) for i in page.items], "next_cursor": page.next_cursor}


Format = Literal["json", "html", "pdf", "csv", "ubl", "cii", "facturx"]


def _document(invoice_id: int, pool: PoolDep, fmt: str) -> Response:
    with http_errors(), pool.connection() as conn:
        data = documents.render(conn, invoice_id, fmt)
    media, suffix = documents.MEDIA[fmt]
    headers = {}
    if fmt not in ("json", "html"):
        headers["Content-Disposition"] = f'attachment; filename="invoice-{invoice_id}.{suffix}"'
    return Response(data, media_type=media, headers=headers)


@router.get(
    "/invoices/{invoice_id}", dependencies=READ,
    responses={200: {"content": {m: {} for m, _ in documents.MEDIA.values()}}},
)
def get_invoice(invoice_id: Id, pool: PoolDep, format: Format = "json") -> Response:
    """The invoice as JSON (default), HTML, PDF, CSV lines or an e-invoice (``?format=``)."""
    return _document(invoice_id, pool, format)


@router.get("/invoices/{invoice_id}/ubl", dependencies=READ)
def get_invoice_ubl(invoice_id: Id, pool: PoolDep) -> Response:
    """A final invoice as UBL 2.1 XML, Peppol BIS Billing 3.0 (409 for a draft)."""
    return _document(invoice_id, pool, "ubl")


@router.get("/invoices/{invoice_id}/cii", dependencies=READ)
def get_invoice_cii(invoice_id: Id, pool: PoolDep) -> Response:
    """A final invoice as CII XML, Factur-X EN 16931 profile (409 for a draft)."""
    return _document(invoice_id, pool, "cii")


@router.get("/invoices/{invoice_id}/facturx", dependencies=READ)
def get_invoice_facturx(invoice_id: Id, pool: PoolDep) -> Response:
    """A final invoice as Factur-X: PDF/A-3 with its CII XML embedded."""
    return _document(invoice_id, pool, "facturx")


class FinalizeIn(BodyModel):
    grace_hours: float = Field(72.0, ge=0, le=24 * 366, allow_inf_nan=False)
    force: bool = False
    reason: str | None = Field(None, max_length=2000)  # required with force; recorded
    now: When | None = None  # for back-dated runs and tests; default: the server clock


@router.post("/invoices/{invoice_id}/finalize", dependencies=BILLING)
def finalize_invoice(
    invoice_id: Id,
    request: Request,
    pool: PoolDep,
    body: FinalizeIn | None = None,
    key: KeyHeader = None,
) -> JSONResponse:
    """Finalize one draft: numbered and immutable from now on. Refused with 409 before its
    period end + ``grace_hours`` (default 72) unless ``force`` with a ``reason``, which is
    recorded on the invoice. Role: billing."""
    b = body or FinalizeIn()
    with http_errors():
        forced = force_reason(b.force, b.reason)
    now = b.now or datetime.now(UTC)
    grace = timedelta(hours=b.grace_hours)
    return idempotent(
        pool,
        request,
        key,
        dump(b),
        lambda c: (
            200,
            out.invoice_summary(finalize_one(c, invoice_id, now, grace=grace, forced=forced)),
        ),
    )


@router.get("/invoices/{invoice_id}/lines/{line_id}/explain", dependencies=READ)
def explain_line(invoice_id: Id, line_id: Id, pool: PoolDep) -> dict[str, Any]:
    """Why am I billed this: meters, intervals, readings, estimated quantity, plan version."""
    with http_errors(), pool.connection() as conn:
        return documents.explain(conn, invoice_id, line_id)
