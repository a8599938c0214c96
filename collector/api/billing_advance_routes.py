"""Billing API, pay-in-advance fees: run the advance billing of a period and read the advance
invoices it issued."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from collector.access import Role
from collector.billing.advance_run import run_advance_billing
from collector.billing.periods import PeriodKey
from collector.storage import billing_advance_store as advance_store

from .access import requires
from .billing_http import BodyModel, PoolDep, http_errors
from .params import IdQuery, When

__all__ = ["router"]

router = APIRouter(tags=["billing"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]


class AdvanceIn(BodyModel):
    chunk_size: int = Field(500, ge=1, le=10_000)
    now: When | None = None  # default: the server clock


def advance_out(a: advance_store.AdvanceInvoice) -> dict[str, Any]:
    return {
        "advance_id": a.advance_id,
        "kind": "advance",
        "number": a.number,
        "customer_id": a.customer_id,
        "period": a.period,
        "period_start": a.period_start.isoformat(),
        "period_end": a.period_end.isoformat(),
        "currency": a.currency,
        "tax_rate": str(a.tax_rate),
        "subtotal": str(a.subtotal),
        "tax": str(a.tax),
        "total": str(a.total),
        "lines": list(a.lines),
        "issued_at": a.issued_at.isoformat(),
    }


@router.post("/billing/advance/{period}/run", dependencies=BILLING)
def advance_run(period: str, body: AdvanceIn, pool: PoolDep) -> dict[str, Any]:
    """Issue the advance invoices of ``period`` (recurring fees with ``pay_in_advance``) not
    issued yet; one per customer and period, so safe to repeat. Role: billing."""
    with http_errors():
        key = PeriodKey.parse(period)
    now = body.now or datetime.now(UTC)
    with http_errors(), pool.connection() as conn:
        issued = run_advance_billing(conn, key, now, chunk_size=body.chunk_size)
    return {"period": str(key), "issued": [advance_out(a) for a in issued]}


@router.get("/billing/advance-invoices", dependencies=READ)
def list_advance(
    pool: PoolDep,
    customer_id: IdQuery = None,
    period: Annotated[str | None, Query(max_length=7)] = None,
) -> dict[str, Any]:
    with http_errors():
        key = None if period is None else str(PeriodKey.parse(period))
    with http_errors(), pool.connection() as conn:
        items = advance_store.list_advance(conn, customer_id=customer_id, period=key)
    return {"items": [advance_out(a) for a in items]}
