"""Wallets API (staff): the per-customer ``auto_apply_wallet`` option (credits pay each
invoice as it is finalized)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from collector.access import Role
from collector.storage import wallets_auto_apply as auto

from .access import requires
from .billing_http import BodyModel, PoolDep, http_errors
from .params import Id

__all__ = ["router"]

router = APIRouter(tags=["wallets"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]


class AutoApplyIn(BodyModel):
    auto_apply_wallet: bool


@router.put("/billing/customers/{customer_id}/wallet/auto-apply", dependencies=BILLING)
def set_auto_apply(customer_id: Id, body: AutoApplyIn, pool: PoolDep) -> dict[str, Any]:
    """Turn wallet consumption at finalize on or off (404 without a wallet). Role: billing."""
    with http_errors(), pool.connection() as conn:
        on = auto.set_auto_apply(conn, customer_id, body.auto_apply_wallet)
    return {"customer_id": customer_id, "auto_apply_wallet": on}


@router.get("/billing/customers/{customer_id}/wallet/auto-apply", dependencies=READ)
def get_auto_apply(customer_id: Id, pool: PoolDep) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        return {"customer_id": customer_id, "auto_apply_wallet": auto.auto_apply(conn, customer_id)}
