"""Customer portal: alert settings. A customer sets and removes thresholds on its own usage or
bill amount per period (rules with ``owner='customer'``) and sees the alerts they raised.

* ``GET /portal/alerts``: the page (browser) or the settings as JSON (bearer client);
* ``POST /portal/alerts``: add a rule (form: ``metric``, ``unit``, ``threshold``,
  ``relative``, ``name``, and the session's ``csrf``); 303 back to the page;
* ``POST /portal/alerts/{rule_id}/remove``: stop one of the customer's own rules; any other
  rule (another customer's, a staff rule, an unknown id) answers 404.

A browser session must send its CSRF token with every POST; a bearer client (no cookie, so no
cross-site forgery) needs none. Customer A never sees or changes B's rules: the customer id
comes from the session or token, never from the request.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collector.alerts.rules import AlertRule, Metric
from collector.errors import NotFound, NotificationError
from collector.portal.alerts_panel import AlertsView, alerts_json, alerts_page_html, own_view
from collector.portal.layout import Frame, page
from collector.portal.locale_format import LocalFormat
from collector.signin.model import csrf_matches
from collector.storage import alert_store
from collector.storage import billing_store as customers
from collector.storage import portal_queries as pq
from collector.storage.database import Pool

from .access import customer_only
from .deps import get_pool
from .params import Id
from .portal_signin import Visitor, sign_in_page, visitor
from .web_session import PAGE_HEADERS, check_origin

__all__ = ["alerts_view", "router"]

router = APIRouter(prefix="/portal", tags=["portal"])
CUSTOMER = [customer_only()]
PoolDep = Annotated[Pool, Depends(get_pool)]
VisitorDep = Annotated[Visitor | None, Depends(visitor)]
Conn = psycopg.Connection[Any]


def alerts_view(conn: Conn, customer_id: int) -> AlertsView:
    """The customer's own rules, recent alerts, meter units and currency."""
    c = customers.get_customer(conn, customer_id)
    return own_view(
        customer_id,
        alert_store.list_rules(conn, customer_id=customer_id),
        alert_store.list_alerts(conn, customer_id=customer_id, limit=100),
        [m.usage_unit for m in pq.customer_meters(conn, customer_id)],
        c.spec.currency,
    )


def _signed_in(who: Visitor | None) -> Visitor:
    if who is None:
        raise HTTPException(
            401, "portal token or session required", headers={"WWW-Authenticate": "Bearer"}
        )
    return who


def _check_form(request: Request, who: Visitor, csrf: str | None) -> None:
    """A browser session's POST must come from our origin and carry the session's token."""
    if who.csrf is None:
        return  # bearer client: no cookie, nothing to forge
    check_origin(request)
    if not csrf_matches(who.csrf, csrf):
        raise HTTPException(403, "missing or wrong CSRF token")


def _page(pool: Pool, who: Visitor, error: str | None = None, status: int = 200) -> Response:
    with pool.connection() as conn:
        c = customers.get_customer(conn, who.customer_id)
        v = alerts_view(conn, who.customer_id)
    frame = Frame(lang=c.spec.language, customer=c.spec.name, csrf=who.csrf)
    body = alerts_page_html(
        v, LocalFormat(c.spec.language, c.spec.time_zone), frame.words, who.csrf or "", error
    )
    return HTMLResponse(
        page(frame.words["alerts"], body, frame), status_code=status, headers=PAGE_HEADERS
    )


@router.get("/alerts", dependencies=CUSTOMER, response_model=None)
def my_alerts(request: Request, *, pool: PoolDep, who: VisitorDep) -> Response | dict[str, Any]:
    """The customer's alert rules and recent alerts (page for a browser, JSON otherwise)."""
    wants_html = "text/html" in request.headers.get("accept", "")
    if who is None and wants_html:
        return sign_in_page(request)
    who = _signed_in(who)
    if wants_html and who.csrf is not None:
        return _page(pool, who)
    with pool.connection() as conn:
        return alerts_json(alerts_view(conn, who.customer_id))


def _rule_from_form(
    customer_id: int,
    *,
    units: tuple[str, ...],
    metric: str,
    unit: str,
    threshold: str,
    relative: bool,
    name: str,
) -> AlertRule:
    try:
        m = Metric(metric)
    except ValueError as exc:
        raise NotificationError("metric must be quantity or amount") from exc
    try:
        limit = Decimal(threshold.strip().replace(",", "."))
    except InvalidOperation as exc:
        raise NotificationError("the limit must be a number") from exc
    if not limit.is_finite():
        raise NotificationError("the limit must be a number")
    if m is Metric.QUANTITY and unit not in units:
        raise NotificationError("choose the unit of one of your meters")
    return AlertRule(
        0,
        "customer",
        customer_id,
        m,
        unit if m is Metric.QUANTITY else None,
        limit,
        relative,
        name.strip(),
    )


@router.post("/alerts", dependencies=CUSTOMER, response_model=None)
def add_alert(
    request: Request,
    *,
    pool: PoolDep,
    who: VisitorDep,
    metric: Annotated[str, Form(max_length=20)] = "",
    threshold: Annotated[str, Form(max_length=20)] = "",
    unit: Annotated[str, Form(max_length=32)] = "",
    relative: Annotated[bool, Form()] = False,
    name: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Add a threshold for the signed-in customer; a refused form is shown again with why
    (422), a browser is sent back to the page (303), a bearer client gets the rule (201)."""
    who = _signed_in(who)
    _check_form(request, who, csrf)
    try:
        with pool.connection() as conn:
            units = alerts_view(conn, who.customer_id).units
            rule = _rule_from_form(
                who.customer_id,
                units=units,
                metric=metric,
                unit=unit,
                threshold=threshold,
                relative=relative,
                name=name,
            )
            created = alert_store.create_rule(conn, rule)
    except NotificationError as exc:
        if who.csrf is not None:
            return _page(pool, who, str(exc), 422)
        raise HTTPException(422, str(exc)) from exc
    if who.csrf is not None:
        return RedirectResponse("/portal/alerts", status_code=303)
    return Response(status_code=201, headers={"Location": f"/portal/alerts#{created.rule_id}"})


@router.post("/alerts/{rule_id}/remove", dependencies=CUSTOMER, response_model=None)
def remove_alert(
    rule_id: Id,
    request: Request,
    *,
    pool: PoolDep,
    who: VisitorDep,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Stop one of the customer's own rules (its past alerts stay); 404 for any other rule."""
    who = _signed_in(who)
    _check_form(request, who, csrf)
    try:
        with pool.connection() as conn:
            alert_store.deactivate_customer_rule(conn, rule_id, who.customer_id)
    except NotFound as exc:
        raise HTTPException(404, "alert rule not found") from exc
    if who.csrf is not None:
        return RedirectResponse("/portal/alerts", status_code=303)
    return Response(status_code=204)
