"""Wallets API (staff): create a customer's wallet, top it up, read it, pay an invoice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from collector.access import Role
from collector.storage import wallets_store as store
from collector.wallets import ledger

from .access import requires
from .billing_http import BodyModel, Conn, KeyHeader, PoolDep, dump, http_errors, idempotent
from .params import Id, When

__all__ = ["router"]

router = APIRouter(tags=["wallets"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]


class TopUpIn(BodyModel):
    credits: Decimal = Field(gt=0, le=Decimal("1e12"), allow_inf_nan=False, decimal_places=6)
    granted_at: When | None = None  # default: now
    expires_at: When | None = None
    note: str = Field("", max_length=500)


class ApplyIn(BodyModel):
    at: When | None = None  # default: now


def _allocs(items: tuple[ledger.Allocation, ...]) -> list[dict[str, Any]]:
    return [{"top_up_id": a.top_up_id, "amount": str(a.amount)} for a in items]


def wallet_out(w: store.Wallet, at: datetime) -> dict[str, Any]:
    left = ledger.remaining(w.top_ups, w.uses)
    return {
        "wallet_id": w.wallet_id,
        "customer_id": w.customer_id,
        "currency": w.currency,
        "balance": str(ledger.available(w.top_ups, w.uses, at)),
        "top_ups": [
            {
                "top_up_id": t.top_up_id,
                "credits": str(t.credits),
                "remaining": str(left[t.top_up_id]),
                "granted_at": t.granted_at.isoformat(),
                "expires_at": None if t.expires_at is None else t.expires_at.isoformat(),
                "usable": t.usable_at(at),
            }
            for t in w.top_ups
        ],
    }


@router.post(
    "/billing/customers/{customer_id}/wallet", dependencies=BILLING, status_code=201
)
def create_wallet(
    customer_id: Id, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    now = datetime.now(UTC)
    return idempotent(
        pool,
        request,
        key,
        {"customer_id": customer_id},
        lambda c: (201, wallet_out(store.create_wallet(c, customer_id), now)),
    )


@router.get("/billing/customers/{customer_id}/wallet", dependencies=READ)
def get_wallet(customer_id: Id, pool: PoolDep) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        return wallet_out(store.get_wallet(conn, customer_id), datetime.now(UTC))


@router.post(
    "/billing/customers/{customer_id}/wallet/top-ups", dependencies=BILLING, status_code=201
)
def top_up(
    customer_id: Id, body: TopUpIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    granted = body.granted_at or datetime.now(UTC)

    def op(c: Conn) -> tuple[int, Any]:
        t = store.add_top_up(
            c, customer_id, body.credits, granted, expires_at=body.expires_at, note=body.note
        )
        return 201, {"top_up_id": t.top_up_id, "credits": str(t.credits)}

    return idempotent(pool, request, key, dump(body), op)


@router.post(
    "/billing/invoices/{invoice_id}/wallet-application", dependencies=BILLING, status_code=201
)
def apply_wallet(
    invoice_id: Id, body: ApplyIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    at = body.at or datetime.now(UTC)

    def op(c: Conn) -> tuple[int, Any]:
        a = store.apply_to_invoice(c, invoice_id, at)
        return 201, {
            "invoice_id": a.invoice_id,
            "invoice_total": str(a.invoice_total),
            "applied": str(a.applied),
            "amount_due": str(a.amount_due),
            "allocations": _allocs(a.allocations),
            "expired": _allocs(a.expired),
        }

    return idempotent(pool, request, key, dump(body), op)
