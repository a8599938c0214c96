"""Billing API, progressive billing: run the interim-invoice check of an open period and read
the interim invoices it issued."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from collector.access import Role
from collector.billing.periods import PeriodKey
from collector.billing.progressive_run import run_progressive_check
from collector.storage import billing_interim_store as interim_store

from .access import requires
from .billing_http import BodyModel, PoolDep, http_errors
from .params import Id, IdQuery, When

__all__ = ["router"]

router = APIRouter(tags=["billing"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]


class CheckIn(BodyModel):
    chunk_size: int = Field(500, ge=1, le=10_000)
    now: When | None = None  # for back-dated checks and tests; default: the server clock


def _money(v: Decimal) -> str:
    return str(v)


def interim_out(i: interim_store.InterimInvoice) -> dict[str, Any]:
    return {
        "interim_id": i.interim_id,
        "kind": "interim",
        "number": i.number,
        "customer_id": i.customer_id,
        "subscription_id": i.subscription_id,
        "period": i.period,
        "period_start": i.period_start.isoformat(),
        "period_end": i.period_end.isoformat(),
        "threshold": _money(i.threshold),
        "usage_amount": _money(i.usage_amount),
        "billed_before": _money(i.billed_before),
        "amount": _money(i.amount),
        "currency": i.currency,
        "tax_rate": _money(i.tax_rate),
        "tax": _money(i.tax),
        "total": _money(i.total),
        "description": i.description,
        "issued_at": i.issued_at.isoformat(),
    }


@router.post("/billing/progressive/{period}/check", dependencies=BILLING)
def progressive_check(period: str, body: CheckIn, pool: PoolDep) -> dict[str, Any]:
    """Issue the interim invoices due now for ``period`` (a subscription whose usage amount
    crossed a threshold of its plan's progressive billing charge). Safe to repeat: a threshold
    is billed once. Role: billing."""
    with http_errors():
        key = PeriodKey.parse(period)
    now = body.now or datetime.now(UTC)
    with http_errors(), pool.connection() as conn:
        issued = run_progressive_check(conn, key, now, chunk_size=body.chunk_size)
    return {"period": str(key), "issued": [interim_out(i) for i in issued]}


@router.get("/billing/interim-invoices", dependencies=READ)
def list_interim(
    pool: PoolDep,
    customer_id: IdQuery = None,
    period: Annotated[str | None, Query(max_length=7)] = None,
) -> dict[str, Any]:
    """Interim invoices, oldest first, optionally of one customer and/or period."""
    with http_errors():
        key = None if period is None else str(PeriodKey.parse(period))
    with http_errors(), pool.connection() as conn:
        items = interim_store.list_interim(conn, customer_id=customer_id, period=key)
    return {"items": [interim_out(i) for i in items]}


@router.get("/billing/interim-invoices/{interim_id}", dependencies=READ)
def get_interim(interim_id: Id, pool: PoolDep) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        return interim_out(interim_store.get_interim(conn, interim_id))
