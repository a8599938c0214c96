"""Customer portal: a customer sees its own consumption, final invoices, documents and line
explanations, as JSON and as server-rendered pages.

Authentication (``collector.api.portal_signin``): API clients send ``Authorization: Bearer
<portal token>``; browsers sign in by POSTing a one-time code (or, for customers given one, a
portal token) and get a server-side session whose id is the only thing the cookie holds.
Drafts, other customers' invoices and meters are invisible: they answer 404, exactly like
things that do not exist. Consumption is the customer's share only: a meter moved to another
customer mid-month shows the intervals that started while it was this customer's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from collector.analytics.forecasting import forecast_from_context, load_customer_context
from collector.billing import documents
from collector.billing import serialize as out
from collector.billing.model import Customer, InvoiceStatus
from collector.billing.periods import period_for
from collector.errors import AnalyticsError, NotFound, UsageError, ValidationFailed
from collector.portal import credit_notes_panel, dashboard, forecast_panel, meter_page, pages
from collector.portal.layout import Frame, page
from collector.portal.locale_format import LocalFormat
from collector.portal.navigation import current_period, parse_view
from collector.storage import billing_credit_note_store as credit_notes
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_store as customers
from collector.storage import portal_queries as pq
from collector.storage.database import Pool
from collector.usage import Resolution

from .access import customer_only
from .deps import get_pool
from .params import Id, When
from .portal_alert_routes import alerts_view
from .portal_signin import Visitor, get_now, require_customer, sign_in_page, visitor
from .web_session import PAGE_HEADERS

__all__ = ["DOCUMENT_FORMATS", "get_now", "router"]

router = APIRouter(prefix="/portal", tags=["portal"])
CUSTOMER = [customer_only()]
PoolDep = Annotated[Pool, Depends(get_pool)]
NowDep = Annotated[datetime, Depends(get_now)]
CustomerDep = Annotated[int, Depends(require_customer)]
VisitorDep = Annotated[Visitor | None, Depends(visitor)]
Conn = psycopg.Connection[Any]

# The downloadable documents of a final invoice, as (format, media type, label). More formats
# (e-invoices) are added here and appear on the invoice pages and in the route's ``format``.
DOCUMENT_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("pdf", "application/pdf", "PDF"),
    ("csv", "text/csv; charset=utf-8", "CSV"),
    ("ubl", documents.MEDIA["ubl"][0], "UBL (Peppol BIS 3)"),
    ("facturx", documents.MEDIA["facturx"][0], "Factur-X"),
)
_MEDIA = {"json": "application/json", "html": "text/html; charset=utf-8"} | {
    f: m for f, m, _ in DOCUMENT_FORMATS
}
_MAX_SPAN = {
    Resolution.M15: timedelta(days=31),
    Resolution.H1: timedelta(days=92),
    Resolution.D1: timedelta(days=400),
    Resolution.MO1: timedelta(days=1100),
}


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


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


def _profile(conn: Conn, customer_id: int) -> Customer:
    return customers.get_customer(conn, customer_id)


def _frame(c: Customer, v: Visitor) -> Frame:
    return Frame(lang=c.spec.language, customer=c.spec.name, csrf=v.csrf)


def _fmt(c: Customer) -> LocalFormat:
    return LocalFormat(c.spec.language, c.spec.time_zone)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


# -- invoices (JSON, documents, pages) -----------------------------------------------------------


@router.get("/invoices", dependencies=CUSTOMER, response_model=None)
def my_invoices(
    request: Request,
    *,
    pool: PoolDep,
    who: VisitorDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Response | dict[str, Any]:
    """The customer's final invoices, oldest first (a browser gets the page, newest first)."""
    if who is None:
        if _wants_html(request):
            return sign_in_page(request)
        require_customer(None)
    assert who is not None
    if _wants_html(request):
        with pool.connection() as conn:
            c = _profile(conn, who.customer_id)
            latest = pq.latest_final_invoices(conn, who.customer_id, limit=limit)
        body = pages.invoices_html(latest, _fmt(c), DOCUMENT_FORMATS)
        return _html(page(_frame(c, who).words["invoices"], body, _frame(c, who)))
    try:
        with pool.connection() as conn:
            page_ = invoices.list_invoices(
                conn,
                limit=limit,
                cursor=cursor,
                customer_id=who.customer_id,
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
    responses={200: {"content": {m: {} for m in set(_MEDIA.values())}}},
)
def my_invoice(
    invoice_id: Id,
    request: Request,
    *,
    pool: PoolDep,
    who: VisitorDep,
    format: Literal["json", "html", "pdf", "csv", "ubl", "facturx"] | None = None,
) -> Response:
    """One of the customer's final invoices as JSON (default), HTML, PDF or CSV; a browser
    (``Accept: text/html``, no ``format``) gets the portal page linking the documents."""
    if format is None and _wants_html(request):
        if who is None:
            return sign_in_page(request)
        return _invoice_page(pool, invoice_id, who)
    customer_id = require_customer(who)
    fmt = format or "json"
    _own_final_invoice(pool, customer_id, invoice_id)
    with pool.connection() as conn:
        data = documents.render(conn, invoice_id, fmt)
    headers = {}
    if fmt in {f for f, _, _ in DOCUMENT_FORMATS}:
        headers["Content-Disposition"] = (
            f'attachment; filename="invoice-{invoice_id}.{documents.MEDIA[fmt][1]}"'
        )
    return Response(data, media_type=_MEDIA[fmt], headers=headers)


CreditNoteFormat = Literal["json", "pdf", "ubl", "cii", "facturx"]


@router.get(
    "/invoices/{invoice_id}/credit-notes/{credit_note_id}",
    dependencies=CUSTOMER,
    responses={200: {"content": {"application/pdf": {}, "application/xml": {}}}},
)
def my_credit_note(
    invoice_id: Id,
    credit_note_id: Id,
    *,
    pool: PoolDep,
    customer_id: CustomerDep,
    format: CreditNoteFormat = "json",
) -> Response:
    """A credit note correcting one of the customer's final invoices, as JSON (default), PDF,
    UBL 2.1 CreditNote, CII (type 381) or Factur-X; anyone else's answers 404."""
    _own_final_invoice(pool, customer_id, invoice_id)
    gone = HTTPException(404, "credit note not found")
    with pool.connection() as conn:
        try:
            cn = credit_notes.get_credit_note(conn, credit_note_id)
        except NotFound as exc:
            raise gone from exc
        if cn.corrects_invoice_id != invoice_id or cn.customer_id != customer_id:
            raise gone
        data = documents.render_credit_note(conn, credit_note_id, format)
    media, suffix = documents.MEDIA[format]
    headers = {}
    if format != "json":
        headers["Content-Disposition"] = f'attachment; filename="credit-note-{cn.number}.{suffix}"'
    return Response(data, media_type=media, headers=headers)


@router.get("/invoices/{invoice_id}/lines/{line_id}/explain", dependencies=CUSTOMER)
def my_line_explained(
    invoice_id: Id, line_id: int, *, pool: PoolDep, customer_id: CustomerDep
) -> dict[str, Any]:
    """Why am I billed this (without the internal plan document)."""
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


@router.get("/consumption/meters", dependencies=CUSTOMER)
def my_meters(*, pool: PoolDep, now: NowDep, customer_id: CustomerDep) -> dict[str, Any]:
    """Every meter the customer has or had, with the windows during which it was theirs."""
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
    customer_id: CustomerDep,
    from_: Annotated[When | None, Query(alias="from")] = None,
    to: When | None = None,
    resolution: Resolution = Resolution.D1,
) -> dict[str, Any]:
    """The customer's usage of one meter in ``[from, to)`` (default: the current billing
    period) at ``resolution`` buckets of the customer's zone, with the estimated share and
    each bucket's state (``measured``, ``partial``, ``no_data``, ``not_yours``, ``future``)."""
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
    return meter_page.meter_json(meter, usage, tz, now)


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
    draft = pq.period_draft(conn, customer_id, str(period.key))
    draft_lines = invoices.get_invoice(conn, draft.invoice_id).lines if draft is not None else ()
    return dashboard.build_dashboard(
        customer_name=c.spec.name,
        time_zone=tz,
        now=now,
        period=period,
        previous=previous,
        meters=meters,
        daily=daily,
        draft=draft,
        draft_lines=draft_lines,
        invoices=pq.latest_final_invoices(conn, customer_id, limit=5),
        data_as_of=pq.latest_reading_time(conn, meters, now),
        forecast=_forecast(conn, customer_id, now),
        alerts=alerts_view(conn, customer_id),
    )


def _forecast(conn: Conn, customer_id: int, now: datetime) -> forecast_panel.PortalForecast | None:
    """The bill forecast of the current period; None when there is too little to go on (no
    meter subscribed in the period, or no usage recorded in it yet)."""
    try:
        ctx = load_customer_context(conn, customer_id, now)
        bill = forecast_from_context(ctx)
    except AnalyticsError:
        return None
    return forecast_panel.portal_forecast(bill)


@router.get("/consumption/current", dependencies=CUSTOMER)
def my_current_period(*, pool: PoolDep, now: NowDep, customer_id: CustomerDep) -> dict[str, Any]:
    """This billing period so far against the previous one, per meter and per unit, the
    running charge from the period's draft invoice when a close run has made one, and the time
    of the newest reading (``data_as_of``)."""
    with pool.connection() as conn:
        return dashboard.dashboard_json(_dashboard(conn, customer_id, now))


# -- pages ---------------------------------------------------------------------------------------


@router.get("/", dependencies=CUSTOMER, response_class=HTMLResponse)
def dashboard_page(request: Request, *, pool: PoolDep, now: NowDep, who: VisitorDep) -> Response:
    """The dashboard: this period against the previous one, charts, charge, invoices."""
    if who is None:
        return sign_in_page(request)
    with pool.connection() as conn:
        c = _profile(conn, who.customer_id)
        d = _dashboard(conn, who.customer_id, now)
    f = _frame(c, who)
    return _html(page(f.words["dashboard"], dashboard.dashboard_html(d, _fmt(c), f.words), f))


@router.get("/meters/{series_id}", dependencies=CUSTOMER, response_class=HTMLResponse)
def meter_page_html(
    series_id: Id,
    request: Request,
    *,
    pool: PoolDep,
    now: NowDep,
    who: VisitorDep,
    month: str | None = None,
    day: str | None = None,
    res: Literal["1d", "1h", "15m"] | None = None,
) -> Response:
    """One meter: daily bars for a month (``?month=YYYY-MM``), hourly or 15-minute bars for a
    day (``?day=YYYY-MM-DD[&res=15m]``); default this month. Compared with the period before."""
    if who is None:
        return sign_in_page(request)
    with pool.connection() as conn:
        c = _profile(conn, who.customer_id)
        tz = c.spec.time_zone
        f = _frame(c, who)
        meter = pq.customer_meter(conn, who.customer_id, series_id)
        if meter is None:
            return _html(pages.not_found_html(f), 404)
        try:
            view = parse_view(month, day, now, tz, res)
        except ValidationFailed as exc:
            raise _unprocessable(exc) from exc
        (usage,) = pq.meter_usage(
            conn, [meter], view.start, view.end, resolution=view.resolution, tz=tz
        )
        before = view.earlier(tz)
        (earlier,) = pq.meter_usage(
            conn, [meter], before.start, before.end, resolution=view.resolution, tz=tz
        )
    body = meter_page.meter_html(
        meter, view, usage, earlier=earlier, before=before, f=_fmt(c), w=f.words, now=now
    )
    return _html(page(meter.name, body, f))


def _invoice_page(pool: Pool, invoice_id: int, who: Visitor) -> Response:
    with pool.connection() as conn:
        c = _profile(conn, who.customer_id)
        f = _frame(c, who)
        try:
            inv = invoices.get_invoice(conn, invoice_id)
        except NotFound:
            return _html(pages.not_found_html(f), 404)
        notes = credit_notes.list_for_invoice(conn, invoice_id)
    if inv.customer_id != who.customer_id or inv.status is not InvoiceStatus.FINAL:
        return _html(pages.not_found_html(f), 404)
    body = pages.invoice_html(inv, _fmt(c), DOCUMENT_FORMATS) + (
        credit_notes_panel.credit_notes_html(invoice_id, notes, _fmt(c), f.words)
    )
    return _html(page(f"{f.words['invoice']} {inv.number}", body, f))
