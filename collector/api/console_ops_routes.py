"""The staff console's operations sections: enrollments (create a one-time code, shown once
with its QR code; list the pending ones), batch conflicts, alerts, and webhook deliveries with
manual redelivery. Every page and form asks ``collector.console.access.authorize`` (through the
console's ``_render`` / ``_allowed``), and every form carries the session's CSRF token.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collector.console import ops_pages
from collector.console.access import Action, authorize
from collector.devices.model import EnrollmentPurpose, MeterSpec
from collector.devices.service import DeviceService
from collector.errors import CollectorError, NotFound
from collector.portal.layout import page
from collector.storage import alert_store, ingest_conflicts, webhook_store
from collector.storage.database import Pool

from .access import staff_session
from .console_routes import (
    Signed,
    SignedDep,
    _allowed,
    _frame,
    _html,
    _login_page,
    _render,
    check_csrf_form,
)
from .deps import get_pool
from .params import Id
from .portal_signin import get_now
from .web_session import check_origin

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)
SESSION = [staff_session()]
PoolDep = Annotated[Pool, Depends(get_pool)]
NowDep = Annotated[datetime, Depends(get_now)]
_ROWS = 200


def _devices(request: Request) -> DeviceService | None:
    service = getattr(request.app.state, "devices", None)
    return service if isinstance(service, DeviceService) else None


def _enrollments_body(
    request: Request,
    signed: Signed,
    *,
    issued: ops_pages.Issued | None = None,
    error: str | None = None,
) -> str:
    service = _devices(request)
    if service is None:
        return ops_pages.enrollments_html((), csrf=None, unavailable=True)
    may_create = authorize(signed.member, Action.CREATE_ENROLLMENT)
    return ops_pages.enrollments_html(
        service.store.enrollments(pending_at=service.clock()),
        csrf=signed.csrf if may_create else None,
        issued=issued,
        error=error,
    )


@router.get("/enrollments", dependencies=SESSION, response_class=HTMLResponse)
def enrollments_page(request: Request, s: SignedDep) -> Response:
    """Pending enrollments and (technician, admin) the form that creates one."""
    return _render(
        request,
        s,
        Action.VIEW_ENROLLMENTS,
        "Enrollments",
        lambda signed: _enrollments_body(request, signed),
    )


@router.post("/enrollments", dependencies=SESSION, response_class=HTMLResponse)
def create_enrollment(
    request: Request,
    *,
    s: SignedDep,
    customer_id: Annotated[str, Form(max_length=128)] = "",
    site: Annotated[str, Form(max_length=256)] = "",
    meter_name: Annotated[str, Form(max_length=64)] = "main",
    meter_type: Annotated[str, Form(max_length=64)] = "",
    interval_s: Annotated[str, Form(max_length=12)] = "60",
    days: Annotated[str, Form(max_length=4)] = "7",
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Create a one-time enrollment code; the page shows it once with its QR code."""
    check_origin(request)
    if s is None:
        return _login_page(request)
    check_csrf_form(s, csrf)
    signed = _allowed(s, Action.CREATE_ENROLLMENT)
    service = _devices(request)
    if service is None:
        raise HTTPException(503, "device enrollment is not configured on this collector")
    try:
        lifetime = timedelta(days=int(days))
        meter = MeterSpec(meter_name.strip(), meter_type.strip(), float(interval_s), {})
        made = service.create_enrollment(
            customer_id.strip(), site.strip(), [meter], lifetime, purpose=EnrollmentPurpose.NEW
        )
    except (ValueError, CollectorError) as exc:
        body = _enrollments_body(request, signed, error=str(exc))
        return _html(page("Enrollments", body, _frame(signed)), 422)
    issued = ops_pages.Issued(
        made.enrollment.enrollment_id,
        made.code,
        made.qr_text,
        made.enrollment.expires_at.isoformat(timespec="minutes"),
    )
    body = _enrollments_body(request, signed, issued=issued)
    return _html(page("Enrollments", body, _frame(signed)), 201)


@router.get("/conflicts", dependencies=SESSION, response_class=HTMLResponse)
def conflicts_page(request: Request, s: SignedDep, pool: PoolDep) -> Response:
    """Batches kept aside because they reused a stored (device, seq) with other readings."""
    return _render(
        request,
        s,
        Action.VIEW_CONFLICTS,
        "Batch conflicts",
        lambda _: ops_pages.conflicts_html(ingest_conflicts.list_conflicts(pool, limit=_ROWS)),
    )


@router.get("/alerts", dependencies=SESSION, response_class=HTMLResponse)
def alerts_page(request: Request, s: SignedDep, pool: PoolDep) -> Response:
    """Recent alerts of every customer and the active rules."""

    def build(_: Signed) -> str:
        with pool.connection() as conn:
            recent = alert_store.list_alerts(conn, limit=_ROWS)
            rules = alert_store.list_rules(conn)
        return ops_pages.alerts_html(recent, rules)

    return _render(request, s, Action.VIEW_ALERTS, "Alerts", build)


@router.get("/webhooks", dependencies=SESSION, response_class=HTMLResponse)
def deliveries_page(request: Request, s: SignedDep, pool: PoolDep) -> Response:
    """The webhook delivery log; billing and admin get a redeliver button per delivery."""

    def build(signed: Signed) -> str:
        with pool.connection() as conn:
            found = webhook_store.list_deliveries(conn, limit=_ROWS)
        may = authorize(signed.member, Action.REDELIVER)
        return ops_pages.deliveries_html(found, csrf=signed.csrf if may else None)

    return _render(request, s, Action.VIEW_DELIVERIES, "Webhook deliveries", build)


@router.post("/webhooks/{delivery_id}/redeliver", dependencies=SESSION)
def redeliver(
    delivery_id: Id,
    request: Request,
    *,
    s: SignedDep,
    pool: PoolDep,
    now: NowDep,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Queue one delivery again now (same event id); back to the log."""
    check_origin(request)
    if s is None:
        return _login_page(request)
    check_csrf_form(s, csrf)
    _allowed(s, Action.REDELIVER)
    try:
        with pool.connection() as conn:
            webhook_store.redeliver(conn, delivery_id, now)
    except NotFound as exc:
        raise HTTPException(404, "delivery not found") from exc
    return RedirectResponse("/console/webhooks", status_code=303)
