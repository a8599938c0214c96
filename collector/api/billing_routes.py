"""Billing API: customers, plans, subscriptions, period close runs, invoices and documents.

Errors of the billing domain map to HTTP here and only here: NotFound → 404, Conflict → 409,
ValidationFailed/PlanError → 422. POSTs accept an ``Idempotency-Key`` header: the same key with
the same body returns the stored response; with a different body it is a 409.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, BackgroundTasks, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from collector.billing import accounts, documents
from collector.billing import serialize as out
from collector.billing.close import (
    CloseConfig,
    begin_run,
    close_period,
    finalize_period,
    refresh_period,
)
from collector.billing.model import Address, CustomerSpec, InvoiceStatus
from collector.billing.periods import PeriodKey
from collector.errors import Conflict, NotFound, PlanError, ValidationFailed
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_portal_store as portal
from collector.storage import billing_run_store as runs
from collector.storage import billing_store as store
from collector.storage.database import Pool

from .deps import get_pool

__all__ = ["router"]

router = APIRouter(tags=["billing"])
PoolDep = Annotated[Pool, Depends(get_pool)]
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Conn = psycopg.Connection[Any]
Op = Callable[[Conn], tuple[int, Any]]


@contextmanager
def _http() -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except (ValidationFailed, PlanError) as exc:
        raise HTTPException(422, str(exc)) from exc


def _idempotent(pool: Pool, request: Request, key: str | None, body: Any, op: Op) -> JSONResponse:
    """Run ``op`` in one transaction together with claiming the idempotency key."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    scope = f"{request.method} {request.url.path}"
    with _http(), pool.connection() as conn, conn.transaction():
        if key:
            stored = runs.claim_idempotency_key(conn, scope, key, digest)
            if stored is not None:
                if stored.request_hash != digest:
                    raise HTTPException(409, "Idempotency-Key reused with a different request body")
                return JSONResponse(
                    stored.body, stored.status_code, headers={"Idempotent-Replayed": "true"}
                )
        status, payload = op(conn)
        if key:
            runs.save_idempotent_response(conn, scope, key, status, payload)
    return JSONResponse(payload, status)


# -- request bodies ----------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(_In):
    line1: str
    line2: str = ""
    postal_code: str = ""
    city: str
    country: str


class CustomerIn(_In):
    name: str
    address: AddressIn
    currency: str
    time_zone: str
    tax_rate: Decimal
    language: str = "en"
    issuer: str = "default"
    invoice_prefix: str = "INV"
    anchor_day: int = 1

    def spec(self) -> CustomerSpec:
        a = self.address
        return CustomerSpec(
            name=self.name,
            address=Address(a.line1, a.city, a.country, a.postal_code, a.line2),
            currency=self.currency,
            time_zone=self.time_zone,
            tax_rate=self.tax_rate,
            language=self.language,
            issuer=self.issuer,
            invoice_prefix=self.invoice_prefix,
            anchor_day=self.anchor_day,
        )


class PlanIn(_In):
    code: str = Field(min_length=1, max_length=64)
    name: str = ""
    document: dict[str, Any]


class PlanVersionIn(_In):
    document: dict[str, Any]


class SubscriptionIn(_In):
    customer_id: int
    series_id: int
    plan_version_id: int
    valid_from: datetime
    valid_to: datetime | None = None


class EndIn(_In):
    at: datetime


class MoveIn(_In):
    to_customer_id: int
    at: datetime
    plan_version_id: int | None = None


class ChangePlanIn(_In):
    plan_version_id: int
    at: datetime


class RunIn(_In):
    chunk_size: int = 1000
    grace_hours: float = 72.0
    horizon_days: float = 92.0
    force: bool = False
    now: datetime | None = None  # for back-dated runs and tests; default: the server clock

    def config(self) -> CloseConfig:
        return CloseConfig(
            chunk_size=self.chunk_size,
            grace=timedelta(hours=self.grace_hours),
            correction_horizon=timedelta(days=self.horizon_days),
        )


def _dump(m: BaseModel) -> Any:
    return m.model_dump(mode="json")


# -- customers ---------------------------------------------------------------------------------


@router.post("/billing/customers", status_code=201)
def create_customer(
    body: CustomerIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    with _http():
        spec = body.spec()
    return _idempotent(
        pool,
        request,
        key,
        _dump(body),
        lambda c: (201, out.customer_out(accounts.create_customer(c, spec))),
    )


@router.get("/billing/customers")
def list_customers(
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    name: str | None = None,
    issuer: str | None = None,
) -> dict[str, Any]:
    with _http(), pool.connection() as conn:
        page = store.list_customers(
            conn, limit=limit, cursor=cursor, name_contains=name, issuer=issuer
        )
    return {"items": [out.customer_out(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/billing/customers/{customer_id}")
def get_customer(customer_id: int, pool: PoolDep) -> dict[str, Any]:
    with _http(), pool.connection() as conn:
        return out.customer_out(store.get_customer(conn, customer_id))


@router.put("/billing/customers/{customer_id}")
def update_customer(customer_id: int, body: CustomerIn, pool: PoolDep) -> dict[str, Any]:
    with _http(), pool.connection() as conn, conn.transaction():
        return out.customer_out(accounts.update_customer(conn, customer_id, body.spec()))


@router.post("/billing/customers/{customer_id}/portal-tokens", status_code=201)
def create_portal_token(customer_id: int, pool: PoolDep) -> dict[str, Any]:
    """A new customer-portal token, shown only in this response (stored hashed)."""
    token = secrets.token_urlsafe(32)
    with _http(), pool.connection() as conn, conn.transaction():
        store.get_customer(conn, customer_id)
        portal.add_token(conn, customer_id, token)
    return {"customer_id": customer_id, "token": token}


@router.delete("/billing/customers/{customer_id}/portal-tokens")
def revoke_portal_tokens(customer_id: int, pool: PoolDep) -> dict[str, Any]:
    """Revoke every portal token of the customer."""
    with _http(), pool.connection() as conn, conn.transaction():
        store.get_customer(conn, customer_id)
        revoked = portal.revoke_tokens(conn, customer_id, datetime.now(UTC))
    return {"customer_id": customer_id, "revoked": revoked}


# -- plans -------------------------------------------------------------------------------------


@router.post("/billing/plans", status_code=201)
def create_plan(
    body: PlanIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    def op(c: Conn) -> tuple[int, Any]:
        plan, version = accounts.create_plan(c, body.code, body.name, body.document)
        return 201, {**out.plan_out(plan), "version": out.version_out(version)}

    return _idempotent(pool, request, key, _dump(body), op)


@router.get("/billing/plans")
def list_plans(
    pool: PoolDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None
) -> dict[str, Any]:
    with _http(), pool.connection() as conn:
        page = store.list_plans(conn, limit=limit, cursor=cursor)
    return {"items": [out.plan_out(p) for p in page.items], "next_cursor": page.next_cursor}


@router.get("/billing/plans/{plan_id}")
def get_plan(plan_id: int, pool: PoolDep) -> dict[str, Any]:
    with _http(), pool.connection() as conn:
        plan = store.get_plan(conn, plan_id)
        versions = store.list_plan_versions(conn, plan_id)
    return {**out.plan_out(plan), "versions": [out.version_out(v) for v in versions]}


@router.post("/billing/plans/{plan_id}/versions", status_code=201)
def new_plan_version(
    plan_id: int, body: PlanVersionIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return _idempotent(
        pool,
        request,
        key,
        _dump(body),
        lambda c: (201, out.version_out(accounts.new_plan_version(c, plan_id, body.document))),
    )


# -- subscriptions -----------------------------------------------------------------------------


@router.post("/billing/subscriptions", status_code=201)
def assign_meter(
    body: SubscriptionIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return _idempotent(
        pool,
        request,
        key,
        _dump(body),
        lambda c: (
            201,
            out.subscription_out(
                accounts.assign_meter(
                    c,
                    body.customer_id,
                    body.series_id,
                    body.plan_version_id,
                    body.valid_from,
                    valid_to=body.valid_to,
                )
            ),
        ),
    )


@router.get("/billing/subscriptions")
def list_subscriptions(
    *,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    customer_id: int | None = None,
    series_id: int | None = None,
    active_at: datetime | None = None,
) -> dict[str, Any]:
    with _http(), pool.connection() as conn:
        page = store.list_subscriptions(
            conn,
            limit=limit,
            cursor=cursor,
            customer_id=customer_id,
            series_id=series_id,
            active_at=active_at,
        )
    return {"items": [out.subscription_out(s) for s in page.items], "next_cursor": page.next_cursor}


@router.post("/billing/subscriptions/{subscription_id}/end")
def end_subscription(
    subscription_id: int, body: EndIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return _idempotent(
        pool,
        request,
        key,
        _dump(body),
        lambda c: (
            200,
            out.subscription_out(accounts.end_subscription(c, subscription_id, body.at)),
        ),
    )


@router.post("/billing/subscriptions/{subscription_id}/move", status_code=201)
def move_meter(
    subscription_id: int, body: MoveIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return _idempotent(
        pool,
        request,
        key,
        _dump(body),
        lambda c: (
            201,
            out.subscription_out(
                accounts.move_meter(
                    c, subscription_id, body.to_customer_id, body.at, body.plan_version_id
                )
            ),
        ),
    )


@router.post("/billing/subscriptions/{subscription_id}/change-plan", status_code=201)
def change_plan(
    subscription_id: int, body: ChangePlanIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return _idempotent(
        pool,
        request,
        key,
        _dump(body),
        lambda c: (
            201,
            out.subscription_out(
                accounts.change_plan(c, subscription_id, body.plan_version_id, body.at)
            ),
        ),
    )


# -- period close runs -------------------------------------------------------------------------


@router.post("/billing/periods/{period}/{action}", status_code=202)
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
    """Start (or resume) a close/refresh/finalize run in the background; poll ``/billing/runs``."""
    with _http():
        pkey = PeriodKey.parse(period)
        cfg = body.config()
    now = body.now or datetime.now(UTC)

    def op(_: Conn) -> tuple[int, Any]:
        run = begin_run(pool, pkey, action, now)
        if run.status == "running":
            if action == "finalize":
                background.add_task(finalize_period, pool, pkey, now, cfg, force=body.force)
            else:
                fn = close_period if action == "close" else refresh_period
                background.add_task(fn, pool, pkey, now, cfg)
        return (202 if run.status == "running" else 200), out.run_out(run)

    return _idempotent(pool, request, key, {"period": period, "action": action, **_dump(body)}, op)


@router.get("/billing/periods/{period}")
def period_status(period: str, pool: PoolDep) -> dict[str, Any]:
    """Invoice counts (draft/final) and the runs of a period."""
    with _http():
        key = str(PeriodKey.parse(period))
    with _http(), pool.connection() as conn:
        counts = invoices.status_counts(conn, key)
        period_runs = runs.list_runs(conn, key)
    return {"period": key, "invoices": counts, "runs": [out.run_out(r) for r in period_runs]}


@router.get("/billing/runs/{run_id}")
def get_run(run_id: int, pool: PoolDep) -> dict[str, Any]:
    with _http(), pool.connection() as conn:
        return out.run_out(runs.get_run(conn, run_id))


# -- invoices ----------------------------------------------------------------------------------


@router.get("/invoices")
def list_invoices(
    *,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    customer_id: int | None = None,
    period: str | None = None,
    status: Literal["draft", "final"] | None = None,
) -> dict[str, Any]:
    with _http(), pool.connection() as conn:
        page = invoices.list_invoices(
            conn,
            limit=limit,
            cursor=cursor,
            customer_id=customer_id,
            period=period,
            status=InvoiceStatus(status) if status else None,
        )
    return {"items": [out.invoice_summary(i) for i in page.items], "next_cursor": page.next_cursor}


_MEDIA = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}


@router.get("/invoices/{invoice_id}")
def get_invoice(
    invoice_id: int, pool: PoolDep, format: Literal["json", "html", "pdf", "csv"] = "json"
) -> Response:
    """The invoice as JSON (default), HTML, PDF or CSV lines (``?format=``)."""
    with _http(), pool.connection() as conn:
        data = documents.render(conn, invoice_id, format)
    headers = {}
    if format in ("pdf", "csv"):
        headers["Content-Disposition"] = f'attachment; filename="invoice-{invoice_id}.{format}"'
    return Response(data, media_type=_MEDIA[format], headers=headers)


@router.post("/invoices/{invoice_id}/finalize")
def finalize_invoice(
    invoice_id: int, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    now = datetime.now(UTC)
    return _idempotent(
        pool,
        request,
        key,
        {},
        lambda c: (200, out.invoice_summary(invoices.finalize_invoice(c, invoice_id, now))),
    )


@router.get("/invoices/{invoice_id}/lines/{line_id}/explain")
def explain_line(invoice_id: int, line_id: int, pool: PoolDep) -> dict[str, Any]:
    """Why am I billed this: meters, intervals, readings, estimated quantity, plan version."""
    with _http(), pool.connection() as conn:
        return documents.explain(conn, invoice_id, line_id)
