"""Billing value objects as JSON-ready dicts (for the API and the CLI)."""

from __future__ import annotations

from typing import Any

from collector.billing.model import Customer, Invoice, Plan, PlanVersion, Subscription
from collector.storage.billing_run_store import BillingRun


def customer_out(c: Customer) -> dict[str, Any]:
    s = c.spec
    return {
        "customer_id": c.customer_id,
        "name": s.name,
        "address": s.address.to_json(),
        "currency": s.currency,
        "time_zone": s.time_zone,
        "tax_rate": str(s.tax_rate),
        "language": s.language,
        "issuer": s.issuer,
        "invoice_prefix": s.invoice_prefix,
        "anchor_day": s.anchor_day,
        "tax": s.tax.to_json(),
        "created_at": c.created_at.isoformat(),
    }


def plan_out(p: Plan) -> dict[str, Any]:
    return {
        "plan_id": p.plan_id,
        "code": p.code,
        "name": p.name,
        "currency": p.currency,
        "latest_version": p.latest_version,
    }


def version_out(v: PlanVersion) -> dict[str, Any]:
    return {
        "plan_version_id": v.plan_version_id,
        "plan_id": v.plan_id,
        "version": v.version,
        "document": dict(v.document),
        "created_at": v.created_at.isoformat(),
    }


def subscription_out(s: Subscription) -> dict[str, Any]:
    return {
        "subscription_id": s.subscription_id,
        "customer_id": s.customer_id,
        "series_id": s.series_id,
        "plan_version_id": s.plan_version_id,
        "valid_from": s.valid_from.isoformat(),
        "valid_to": s.valid_to.isoformat() if s.valid_to else None,
    }


def run_out(r: BillingRun) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "period": r.period,
        "kind": r.kind,
        "status": r.status,
        "total_customers": r.total_customers,
        "done_customers": r.done_customers,
        "progress": round(r.progress, 4),
        "invoices_written": r.invoices_written,
        "lines_written": r.lines_written,
        "started_at": r.started_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
    }


def invoice_summary(i: Invoice) -> dict[str, Any]:
    return {
        "invoice_id": i.invoice_id,
        "number": i.number,
        "status": i.status.value,
        "customer_id": i.customer_id,
        "period": i.period,
        "currency": i.currency,
        "subtotal": str(i.subtotal),
        "tax": str(i.tax),
        "total": str(i.total),
        "finalized_at": i.finalized_at.isoformat() if i.finalized_at else None,
        "forced_reason": i.forced_reason,
    }
