"""Billing API: customers, plans, subscriptions, period close runs, invoices and documents.

The routes live in ``billing_account_routes`` (customers, portal tokens, plans, subscriptions),
``billing_run_routes`` (period runs, invoices, documents), ``billing_issuer_routes`` (the
sellers on invoices) and ``billing_credit_note_routes`` (credit notes of an invoice); shared
plumbing (error mapping, idempotency keys) in ``billing_http``. This module combines them into
one ``router``.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import (
    billing_account_routes,
    billing_credit_note_routes,
    billing_issuer_routes,
    billing_run_routes,
)

__all__ = ["router"]

router = APIRouter()
router.include_router(billing_account_routes.router)
router.include_router(billing_run_routes.router)
router.include_router(billing_issuer_routes.router)
router.include_router(billing_credit_note_routes.router)
