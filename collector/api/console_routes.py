"""The staff console: server-rendered pages at ``/console`` (customers, subscriptions and plan
preview, plans, devices and fleet health, period close with review and finalize, dead letters).

Sign-in: ``POST /console/login`` with a staff key or configured staff token (checked by the same
``StaffGate`` as the staff API; on an open loopback-only collector the field is left empty)
starts a server-side session (cookie ``tally_console``, path ``/console``). Every page and form
asks ``collector.console.access.authorize`` whether the signed-in member may do its action.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collector.billing.close import CloseConfig, begin_run, close_period, finalize_period
from collector.billing.finalizing import check_period
from collector.billing.model import InvoiceStatus
from collector.billing.periods import PeriodKey, period_for
from collector.billing.pricing import parse_plan_document
from collector.console import pages
from collector.console.access import SECTIONS, Action, StaffMember, authorize, roles_for
from collector.console.plan_preview import MeterSeries, preview
from collector.errors import NotFound, NotReady, RatingError, UsageError, ValidationFailed
from collector.portal.layout import Frame, page
from collector.portal.navigation import current_period
from collector.signin.model import Audience, csrf_matches
from collector.storage import access_store, ingest_queries
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_run_store as runs
from collector.storage import billing_store as store
from collector.storage import portal_queries as pq
from collector.storage.database import Pool
from collector.usage import Resolution

from .access import public, staff_session
from .access_gate import OPEN, BadCredentials, StaffGate
from .deps import get_pool
from .portal_signin import get_now
from .web_session import (
    PAGE_HEADERS,
    check_csrf,
    check_origin,
    end_session,
    load_session,
    start_session,
)

__all__ = ["router"]

# The console authenticates its own sessions (``_signed``) and every page and form asks
# ``authorize``; only the sign-in form and its POST are public.
router = APIRouter(prefix="/console", include_in_schema=False)
SESSION = [staff_session()]
PUBLIC = [public()]
PoolDep = Annotated[Pool, Depends(get_pool)]
NowDep = Annotated[datetime, Depends(get_now)]
Conn = psycopg.Connection[Any]
_MAX_ROWS = 500


class Signed:
    """The signed-in staff member and the session's CSRF token."""

    __slots__ = ("csrf", "member")

    def __init__(self, member: StaffMember, csrf: str) -> None:
        self.member = member
        self.csrf = csrf


def _html(body: str, status: int = 200, *, refresh: int | None = None) -> HTMLResponse:
    headers = dict(PAGE_HEADERS)
    if refresh:
        headers["Refresh"] = str(refresh)
    return HTMLResponse(body, status_code=status, headers=headers)


def _frame(s: Signed | None) -> Frame:
    nav = tuple((x.path, x.title) for x in SECTIONS if s and authorize(s.member, x.action))
    return Frame(
        lang="en",
        customer=s.member.subject if s else "Staff console",
        csrf=s.csrf if s else None,
        base="/console",
        nav=nav,
    )


def _gate(request: Request) -> StaffGate:
    gate: StaffGate = request.app.state.staff_gate
    return gate


def _role_of(request: Request, pool: Pool, actor: str, now: datetime) -> str | None:
    """The role the session's staff credential still has, ``None`` once it is revoked,
    expired or (a configured token) removed from the configuration."""
    gate = _gate(request)
    kind, _, ident = actor.partition(":")
    if kind == "key":
        with pool.connection() as conn:
            who = access_store.principal_for_key_id(conn, ident, now)
        return None if who is None else who.role.value
    if kind == "token":
        alive = any(d.removeprefix("sha256:").startswith(ident) for d in gate.token_digests)
        return "admin" if alive else None
    if actor == OPEN.actor:
        return None if gate.enforced() else "admin"
    return None


def _signed(request: Request, pool: Pool, now: datetime) -> Signed | None:
    """The session's staff member, as long as the key it signed in with is still valid
    (revoking the key, or removing a configured token, ends the console sessions it started)."""
    session = load_session(pool, request, Audience.CONSOLE, now)
    if session is None or session.staff is None:
        return None
    role = _role_of(request, pool, session.staff, now)
    if role is None:
        return None
    return Signed(StaffMember(session.staff, roles_for(role)), session.csrf)


def signed_in(request: Request, pool: PoolDep, now: NowDep) -> Signed | None:
    """FastAPI dependency: the signed-in staff member, or None."""
    return _signed(request, pool, now)


SignedDep = Annotated[Signed | None, Depends(signed_in)]


class _NeedSignIn(Exception):
    pass


def _allowed(s: Signed | None, action: Action) -> Signed:
    if s is None:
        raise _NeedSignIn
    if not authorize(s.member, action):
        raise HTTPException(403, f"not allowed: {action}")
    return s


def _login_page(request: Request, message: str | None = None, status: int = 401) -> Response:
    open_mode = not _gate(request).enforced()
    return _html(page("Staff sign-in", pages.login_html(message, open_mode), _frame(None)), status)


def _render(request: Request, s: Signed | None, action: Action, title: str, build: Any) -> Response:
    try:
        signed = _allowed(s, action)
    except _NeedSignIn:
        return _login_page(request)
    return _html(page(title, build(signed), _frame(signed)))


@router.get("/login", dependencies=PUBLIC, response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _login_page(request, status=200)


@router.post("/login", dependencies=PUBLIC, response_class=HTMLResponse)
def login(
    request: Request,
    *,
    pool: PoolDep,
    now: NowDep,
    token: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Check a staff token and start a console session; 303 to the console's home."""
    check_origin(request)
    try:
        who = _gate(request).resolve(f"Bearer {token.strip()}" if token.strip() else None)
    except BadCredentials:
        who = None
    if who is None:
        return _login_page(request, "This staff key is not valid.")
    subject = who.actor  # "key:<id>", "token:<digest prefix>" or "open": never the secret
    resp = RedirectResponse("/console/", status_code=303)
    start_session(pool, request, resp, audience=Audience.CONSOLE, now=now, staff=subject)
    return resp


@router.post("/logout", dependencies=PUBLIC)
def logout(
    request: Request,
    *,
    pool: PoolDep,
    now: NowDep,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    check_origin(request)
    session = load_session(pool, request, Audience.CONSOLE, now)
    if session is not None:
        check_csrf(session, csrf)
    resp = RedirectResponse("/console/login", status_code=303)
    end_session(pool, request, resp, Audience.CONSOLE, now)
    return resp


@router.get("/", dependencies=SESSION, response_class=HTMLResponse)
def home(request: Request, s: SignedDep) -> Response:
    if s is None:
        return _login_page(request)
    return _html(page("Staff console", pages.home_html(s.member), _frame(s)))


@router.get("/customers", dependencies=SESSION, response_class=HTMLResponse)
def customers_page(request: Request, s: SignedDep, pool: PoolDep) -> Response:
    def build(_: Signed) -> str:
        with pool.connection() as conn:
            found = store.list_customers(conn, limit=_MAX_ROWS).items
        return pages.customers_html(found)

    return _render(request, s, Action.VIEW_CUSTOMERS, "Customers", build)


def _preview(conn: Conn, customer_id: int, version_id: int, period: str) -> Any:
    c = store.get_customer(conn, customer_id)
    version = store.get_plan_version(conn, version_id)
    plan = parse_plan_document(version.document)
    bp = period_for(PeriodKey.parse(period), c.spec.time_zone, c.spec.anchor_day)
    meters = [m for m in pq.customer_meters(conn, customer_id) if m.overlaps(bp.start, bp.end)]
    if not meters:
        raise ValidationFailed("the customer has no meters in this period")
    usage = pq.meter_usage(conn, meters, bp.start, bp.end, resolution=Resolution.M15, tz="UTC")
    series = [
        MeterSeries(m.name, m.usage_unit, u.starts, u.quantity)
        for m, u in zip(meters, usage, strict=True)
    ]
    return preview(plan, bp, series, c.spec.tax_rate)


@router.get("/customers/{customer_id}", dependencies=SESSION, response_class=HTMLResponse)
def customer_page(
    customer_id: int,
    request: Request,
    *,
    s: SignedDep,
    pool: PoolDep,
    now: NowDep,
    plan_version: int | None = None,
    period: str | None = None,
) -> Response:
    """A customer, its subscriptions, and the plan preview form (and its result)."""

    def build(signed: Signed) -> str:
        with pool.connection() as conn:
            try:
                c = store.get_customer(conn, customer_id)
            except NotFound as exc:
                raise HTTPException(404, "customer not found") from exc
            subs = store.list_subscriptions(conn, customer_id=customer_id, limit=_MAX_ROWS).items
            versions = [
                (p, v)
                for p in store.list_plans(conn, limit=_MAX_ROWS).items
                for v in store.list_plan_versions(conn, p.plan_id)
            ]
            shown = period or str(
                current_period(now, c.spec.time_zone, c.spec.anchor_day).key.previous()
            )
            result, error = None, None
            if plan_version is not None:
                if not authorize(signed.member, Action.PREVIEW_PLAN):
                    raise HTTPException(403, "not allowed: preview_plan")
                try:
                    result = _preview(conn, customer_id, plan_version, shown)
                except (NotFound, ValidationFailed, RatingError, UsageError) as exc:
                    error = str(exc)
        return pages.customer_html(
            c,
            subs=subs,
            versions=versions,
            period=shown,
            chosen=plan_version,
            result=result,
            error=error,
        )

    return _render(request, s, Action.VIEW_CUSTOMERS, "Customer", build)


@router.get("/plans", dependencies=SESSION, response_class=HTMLResponse)
def plans_page(request: Request, s: SignedDep, pool: PoolDep) -> Response:
    def build(_: Signed) -> str:
        with pool.connection() as conn:
            found = [
                (p, store.list_plan_versions(conn, p.plan_id))
                for p in store.list_plans(conn, limit=_MAX_ROWS).items
            ]
        return pages.plans_html(found)

    return _render(request, s, Action.VIEW_PLANS, "Plans", build)


@router.get("/devices", dependencies=SESSION, response_class=HTMLResponse)
def devices_page(request: Request, s: SignedDep, pool: PoolDep, now: NowDep) -> Response:
    def build(_: Signed) -> str:
        return pages.devices_html(ingest_queries.list_devices(pool, limit=_MAX_ROWS), now)

    return _render(request, s, Action.VIEW_FLEET, "Devices", build)


@router.get("/dead-letters", dependencies=SESSION, response_class=HTMLResponse)
def dead_letters_page(request: Request, s: SignedDep, pool: PoolDep) -> Response:
    def build(_: Signed) -> str:
        return pages.dead_letters_html(ingest_queries.dead_letters(pool, limit=200))

    return _render(request, s, Action.VIEW_DEAD_LETTERS, "Dead letters", build)


def _period(text_: str) -> PeriodKey:
    try:
        return PeriodKey.parse(text_)
    except ValidationFailed as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/billing", dependencies=SESSION, response_class=HTMLResponse)
def billing_page(
    request: Request, s: SignedDep, pool: PoolDep, now: NowDep, period: str | None = None
) -> Response:
    """Runs of a period with their progress, its drafts for review, close and finalize forms."""
    key = _period(period) if period else current_period(now, "UTC").key.previous()
    try:
        signed = _allowed(s, Action.VIEW_BILLING)
    except _NeedSignIn:
        return _login_page(request)
    with pool.connection() as conn:
        period_runs = runs.list_runs(conn, str(key))
        drafts = invoices.list_invoices(
            conn, period=str(key), status=InvoiceStatus.DRAFT, limit=_MAX_ROWS
        ).items
        finals = invoices.status_counts(conn, str(key)).get("final", 0)
    body = pages.billing_html(
        str(key),
        runs=period_runs,
        drafts=drafts,
        finals=finals,
        member=signed.member,
        csrf=signed.csrf,
    )
    running = any(r.status == "running" for r in period_runs)
    return _html(page(f"Close {key}", body, _frame(signed)), refresh=2 if running else None)


@router.post("/billing/{period}/{action}", dependencies=SESSION)
def billing_action(
    period: str,
    action: str,
    request: Request,
    *,
    background: BackgroundTasks,
    s: SignedDep,
    pool: PoolDep,
    now: NowDep,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
    reviewed: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    """Start a close (drafts) or, after the review box is ticked, a finalize of ``period``."""
    check_origin(request)
    if s is None:
        return _login_page(request)
    if action not in ("close", "finalize"):
        raise HTTPException(404, "unknown action")
    check_csrf_form(s, csrf)
    needed = Action.RUN_CLOSE if action == "close" else Action.FINALIZE
    _allowed(s, needed)
    key = _period(period)
    if action == "finalize" and reviewed != "yes":
        raise HTTPException(422, "tick the box to confirm the drafts were reviewed")
    cfg = CloseConfig()
    if action == "finalize":
        try:
            with pool.connection() as conn:
                check_period(conn, key, now, grace=cfg.grace, forced=None)
        except NotReady as exc:
            raise HTTPException(409, str(exc)) from exc
    run = begin_run(pool, key, action, now)
    if run.status == "running":
        if action == "close":
            background.add_task(close_period, pool, key, now, cfg)
        else:
            background.add_task(finalize_period, pool, key, now, cfg)
    return RedirectResponse(f"/console/billing?period={key}", status_code=303)


def check_csrf_form(s: Signed, given: str | None) -> None:
    """403 unless the form carried the session's CSRF token."""
    if not csrf_matches(s.csrf, given):
        raise HTTPException(403, "missing or wrong CSRF token")
