"""Customer portal: a customer sees its own consumption, final invoices, documents and line
explanations, as JSON and as server-rendered pages.

Authentication: ``Authorization: Bearer <portal token>`` (staff create tokens with
``POST /billing/customers/{id}/portal-tokens``), or for a browser the same token in an
HttpOnly, SameSite=Strict cookie set once by ``GET /portal/login?token=…``. Drafts, other
customers' invoices and meters are invisible: they answer 404, exactly like things that do not
exist. Consumption is the customer's share only: a meter moved to another customer mid-month
shows the intervals that started while it was this customer's (the billing rule).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Cookie, Depends, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collector.billing import documents
from collector.billing import serialize as out
from collector.billing.model import Customer, InvoiceStatus
from collector.billing.periods import period_for
from collector.errors import NotFound, UsageError, ValidationFailed
from collector.portal import dashboard, meter_page, pages
from collector.portal.layout import page
from collector.portal.navigation import current_period, parse_view
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_portal_store as portal
from collector.storage import billing_store as customers
from collector.storage import portal_queries as pq
from collector.storage.database import Pool
from collector.usage import Resolution

from .access import customer_only, public
from .deps import get_pool
from .params import Id, When

__all__ = ["COOKIE", "get_now", "router"]

router = APIRouter(prefix="/portal", tags=["portal"])
PUBLIC = [public()]
CUSTOMER = [customer_only()]
PoolDep = Annotated[Pool, Depends(get_pool)]
Conn = psycopg.Connection[Any]
COOKIE = "tally_portal"
_COOKIE_MAX_AGE_S = 30 * 86_400
_MEDIA = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}
_MAX_SPAN = {
    Resolution.M15: timedelta(days=31),
    Resolution.H1: timedelta(days=92),
    Resolution.D1: timedelta(days=400),
    Resolution.MO1: timedelta(days=1100),
}
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def get_now() -> datetime:
    """The clock of the portal (a dependency, so tests can fix it)."""
    return datetime.now(UTC)


NowDep = Annotated[datetime, Depends(get_now)]
AuthHeader = Annotated[str | None, Header()]
AuthCookie = Annotated[str | None, Cookie(alias=COOKIE)]


def _token(authorization: str | None, cookie: str | None) -> str | None:
    if authorization and authorization.startswith("Bearer "):
        return authorization.removeprefix("Bearer ").strip() or None
    return cookie or None


def _lookup(pool: Pool, token: str | None) -> int | None:
    if not token:
        return None
    try:
        with pool.connection() as conn:
            return portal.customer_for_token(conn, token)
    except NotFound:
        return None


def _customer(pool: Pool, authorization: str | None, cookie: str | None = None) -> int:
    """The authenticated customer of an API call; 401 without a valid token."""
    token = _token(authorization, cookie)
    if token is None:
        raise HTTPException(401, "portal token required", headers={"WWW-Authenticate": "Bearer"})
    customer_id = _lookup(pool, token)
    if customer_id is None:
        raise HTTPException(
            401, "unknown or revoked portal token", headers={"WWW-Authenticate": "Bearer"}
        )
    return customer_id


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_PAGE_HEADERS)


def _signed_out(message: str | None) -> HTMLResponse:
    resp = _html(pages.login_html(message), 401)
    resp.delete_cookie(COOKIE, path="/portal")
    return resp


def _own_final_invoice(pool: Pool, customer_id: int, invoice_id: int) -> None:
    try:
        with pool.connection() as conn:
            inv = invoices.get_invoice(conn, invoice_id, with_lines=False)
    except NotFound as exc:
        raise HTTPException(404, "invoice not found") from exc
    if inv.customer_id != customer_id or inv.status is not InvoiceStatus.FINAL:
        raise HTTPException(404, "invoice not found")


def _unprocessable(exc: Exception) -> HTTPException:
    return HTTPException(422, str(exc))


# -- invoices (JSON, documents) ------------------------------------------------------------------


@router.get("/invoices", dependencies=CUSTOMER)
def my_invoices(
    *,
    pool: PoolDep,
    authorization: AuthHeader = None,
    tally_portal: AuthCookie = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The customer's final invoices, oldest first."""
    customer_id = _customer(pool, authorization, tally_portal)
    try:
        with pool.connection() as conn:
            page_ = invoices.list_invoices(
                conn, limit=limit, cursor=cursor, customer_id=customer_id,
                status=InvoiceStatus.FINAL,
            )
    except ValidationFailed as exc:
        raise _unprocessable(exc) from exc
    return {
        "items": [out.invoice_summary(i) for i in page_.items],
        "next_cursor": page_.next_cursor,
    }


@router.get(
    "/invoices/{invoice_id}", dependencies=CUSTOMER, response_model=None,
    responses={200: {"content": {m: {} for m in _MEDIA.values()}}},
)
def my_invoice(
    invoice_id: Id,
    request: Request,
    *,
    pool: PoolDep,
    authorization: AuthHeader = None,
    tally_portal: AuthCookie = None,
    format: Literal["json", "html", "pdf", "csv"] | None = None,
) -> Response:
    """One of the customer's final invoices as JSON (default), HTML, PDF or CSV; a browser
    (``Accept: text/html``, no ``format``) gets the portal page linking the PDF."""
    if format is None and "text/html" in request.headers.get("accept", ""):
        return _invoice_page(pool, invoice_id, _token(authorization, tally_portal))
    fmt = format or "json"
    customer_id = _customer(pool, authorization, tally_portal)
    _own_final_invoice(pool, customer_id, invoice_id)
    with pool.connection() as conn:
        data = documents.render(conn, invoice_id, fmt)
    return Response(data, media_type=_MEDIA[fmt])


@router.get("/invoices/{invoice_id}/lines/{line_id}/explain", dependencies=CUSTOMER)
def my_line_explained(
    invoice_id: Id,
    line_id: Id,
    *,
    pool: PoolDep,
    authorization: AuthHeader = None,
    tally_portal: AuthCookie = None,
) -> dict[str, Any]:
    """Why am I billed this (without the internal plan document)."""
    customer_id = _customer(pool, authorization, tally_portal)
    _own_final_invoice(pool, customer_id, invoice_id)
    try:
        with pool.connection() as conn:
            why = documents.explain(conn, invoice_id, line_id)
    except NotFound as exc:
        raise HTTPException(404, "line not found") from exc
    if why.get("plan"):
        why["plan"] = {k: v for k, v in why["plan"].items() if k != "document"}
    return why


# -- consumption (JSON) --------------------------------------------------------------------------


def _profile(conn: Conn, customer_id: int) -> Customer:
    return customers.get_customer(conn, customer_id)


@router.get("/consumption/meters", dependencies=CUSTOMER)
def my_meters(
    *, pool: PoolDep, now: NowDep, authorization: AuthHeader = None, tally_portal: AuthCookie = None
) -> dict[str, Any]:
    """Every meter the customer has or had, with the windows during which it was theirs."""
    customer_id = _customer(pool, authorization, tally_portal)
    with pool.connection() as conn:
        tz = _profile(conn, customer_id).spec.time_zone
        meters = pq.customer_meters(conn, customer_id)
    return {"time_zone": tz, "meters": meter_page.meters_json(meters, now)}


@router.get("/consumption/meters/{series_id}", dependencies=CUSTOMER)
def my_meter_usage(
    series_id: Id,
    *,
    pool: PoolDep,
    now: NowDep,
    authorization: AuthHeader = None,
    tally_portal: AuthCookie = None,
    from_: Annotated[When | None, Query(alias="from")] = None,
    to: When | None = None,
    resolution: Resolution = Resolution.D1,
) -> dict[str, Any]:
    """The customer's usage of one meter in ``[from, to)`` (default: the current billing
    period) at ``resolution`` buckets of the customer's zone, with the estimated share."""
    customer_id = _customer(pool, authorization, tally_portal)
    with pool.connection() as conn:
        c = _profile(conn, customer_id)
        tz = c.spec.time_zone
        meter = pq.customer_meter(conn, customer_id, series_id)
        if meter is None:
            raise HTTPException(404, "meter not found")
        if from_ is None or to is None:
            current = current_period(now, tz, c.spec.anchor_day)
            from_, to = from_ or current.start, to or current.end
        if from_.tzinfo is None or to.tzinfo is None:
            raise HTTPException(422, "from and to need a UTC offset (e.g. 2026-03-01T00:00Z)")
        if to <= from_:
            raise HTTPException(422, "to must be after from")
        if to - from_ > _MAX_SPAN[resolution]:
            raise HTTPException(
                422, f"at {resolution} the range is at most {_MAX_SPAN[resolution]}"
            )
        try:
            (usage,) = pq.meter_usage(conn, [meter], from_, to, resolution=resolution, tz=tz)
        except (UsageError, ValidationFailed) as exc:
            raise _unprocessable(exc) from exc
    return meter_page.meter_json(meter, usage, tz)


def _dashboard(conn: Conn, customer_id: int, now: datetime) -> dashboard.Dashboard:
    c = _profile(conn, customer_id)
    tz, anchor = c.spec.time_zone, c.spec.anchor_day
    period = current_period(now, tz, anchor)
    previous = period_for(period.key.previous(), tz, anchor)
    meters = [
        m for m in pq.customer_meters(conn, customer_id) if m.overlaps(previous.start, period.end)
    ]
    daily = (
        pq.meter_usage(conn, meters, previous.start, period.end, resolution=Resolution.D1, tz=tz)
        if meters
        else []
    )
    return dashboard.build_dashboard(
        customer_name=c.spec.name,
        time_zone=tz,
        now=now,
        period=period,
        previous=previous,
        meters=meters,
        daily=daily,
        draft=pq.period_draft(conn, customer_id, str(period.key)),
        invoices=pq.latest_final_invoices(conn, customer_id, limit=5),
    )


@router.get("/consumption/current", dependencies=CUSTOMER)
def my_current_period(
    *, pool: PoolDep, now: NowDep, authorization: AuthHeader = None, tally_portal: AuthCookie = None
) -> dict[str, Any]:
    """This billing period so far against the previous one, per meter and per unit, and the
    running charge from the period's draft invoice when a close run has made one."""
    customer_id = _customer(pool, authorization, tally_portal)
    with pool.connection() as conn:
        return dashboard.dashboard_json(_dashboard(conn, customer_id, now))


# -- pages ---------------------------------------------------------------------------------------


@router.get("/login", dependencies=PUBLIC, response_class=HTMLResponse)
def login(request: Request, *, pool: PoolDep, token: str | None = None) -> Response:
    """Exchange a token (once, from a link) for an HttpOnly, SameSite=Strict cookie."""
    if not token:
        return _html(pages.login_html())
    if _lookup(pool, token) is None:
        return _signed_out("This access token is unknown or has been revoked.")
    # A 200 page that moves on by itself, not a redirect: a login link opened from another
    # site (a webmail) is a cross-site navigation, and a redirect inside it would not carry
    # the new SameSite=Strict cookie yet; the refresh below is a same-site navigation.
    resp = _html(pages.signed_in_html())
    resp.set_cookie(
        COOKIE,
        token,
        max_age=_COOKIE_MAX_AGE_S,
        path="/portal",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return resp


@router.get(
    "/logout", dependencies=PUBLIC, response_class=HTMLResponse,
    responses={303: {"description": "To the sign-in page."}},
)
def logout() -> Response:
    """Forget the cookie."""
    resp = RedirectResponse("/portal/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/portal")
    return resp


@router.get("/", dependencies=CUSTOMER, response_class=HTMLResponse)
def dashboard_page(
    *, pool: PoolDep, now: NowDep, authorization: AuthHeader = None, tally_portal: AuthCookie = None
) -> Response:
    """The dashboard: meters, this period against the previous one, latest invoices."""
    customer_id = _lookup(pool, _token(authorization, tally_portal))
    if customer_id is None:
        return _signed_out(None if tally_portal is None else "Please sign in again.")
    with pool.connection() as conn:
        d = _dashboard(conn, customer_id, now)
    return _html(page("Your consumption", dashboard.dashboard_html(d), customer=d.customer_name))


@router.get("/meters/{series_id}", dependencies=CUSTOMER, response_class=HTMLResponse)
def meter_page_html(
    series_id: Id,
    *,
    pool: PoolDep,
    now: NowDep,
    authorization: AuthHeader = None,
    tally_portal: AuthCookie = None,
    month: str | None = None,
    day: str | None = None,
) -> Response:
    """One meter: daily bars for a month (``?month=YYYY-MM``) or hourly bars for a day
    (``?day=YYYY-MM-DD``), default this month."""
    customer_id = _lookup(pool, _token(authorization, tally_portal))
    if customer_id is None:
        return _signed_out(None)
    with pool.connection() as conn:
        c = _profile(conn, customer_id)
        tz = c.spec.time_zone
        meter = pq.customer_meter(conn, customer_id, series_id)
        if meter is None:
            return _html(pages.not_found_html(c.spec.name), 404)
        try:
            view = parse_view(month, day, now, tz)
        except ValidationFailed as exc:
            raise _unprocessable(exc) from exc
        (usage,) = pq.meter_usage(
            conn, [meter], view.start, view.end, resolution=view.resolution, tz=tz
        )
    body = meter_page.meter_html(meter, view, usage, tz)
    return _html(page(meter.name, body, customer=c.spec.name))


def _invoice_page(pool: Pool, invoice_id: int, token: str | None) -> Response:
    customer_id = _lookup(pool, token)
    if customer_id is None:
        return _signed_out(None)
    with pool.connection() as conn:
        c = _profile(conn, customer_id)
        try:
            inv = invoices.get_invoice(conn, invoice_id)
        except NotFound:
            return _html(pages.not_found_html(c.spec.name), 404)
    if inv.customer_id != customer_id or inv.status is not InvoiceStatus.FINAL:
        return _html(pages.not_found_html(c.spec.name), 404)
    body = pages.invoice_html(inv, c.spec.time_zone)
    return _html(page(f"Invoice {inv.number}", body, customer=c.spec.name))
