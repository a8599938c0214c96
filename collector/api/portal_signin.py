"""Portal sign-in: who a request is, the sign-in and sign-out forms, and the staff routes that
issue one-time sign-in codes and revoke a customer's access.

* ``GET /portal/login?code=…`` (the link in the e-mail) only *shows* a form with the code
  filled in: opening a link never signs anyone in (mail scanners that open links cannot use
  the code up), and the code is not exchanged over GET.
* ``POST /portal/login`` (form field ``code``) redeems a one-time code (or accepts a long-lived
  portal token) and starts a server-side session; the cookie carries only the session id.
* ``POST /portal/logout`` (with the session's CSRF token) ends the session.
* Staff: ``POST /billing/customers/{id}/portal-sign-in`` makes a code and link (shown once),
  ``DELETE /billing/customers/{id}/portal-sessions`` ends every session and voids unused codes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collector.access import Role
from collector.errors import NotFound
from collector.portal import pages
from collector.portal.words import pick_language, words
from collector.signin.model import CODE_TTL, Audience, make_code, normalize_code
from collector.storage import billing_portal_store as portal_tokens
from collector.storage import billing_store as customers
from collector.storage import signin_store
from collector.storage.database import Pool

from .access import public, requires
from .billing_http import http_errors
from .deps import get_pool
from .params import Id
from .web_session import (
    PAGE_HEADERS,
    check_csrf,
    check_origin,
    end_session,
    load_session,
    start_session,
)

__all__ = [
    "Visitor",
    "get_now",
    "require_customer",
    "router",
    "sign_in_page",
    "staff_router",
    "visitor",
]

router = APIRouter(prefix="/portal", tags=["portal"], dependencies=[public()])
staff_router = APIRouter(tags=["billing"], dependencies=[requires(Role.BILLING)])
PoolDep = Annotated[Pool, Depends(get_pool)]


def get_now() -> datetime:
    """The clock of the portal (a dependency, so tests can fix it)."""
    return datetime.now(UTC)


NowDep = Annotated[datetime, Depends(get_now)]


@dataclass(frozen=True, slots=True)
class Visitor:
    """A signed-in customer: ``csrf`` is set for a browser session, None for a bearer client."""

    customer_id: int
    csrf: str | None


def visitor(
    request: Request,
    pool: PoolDep,
    now: NowDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Visitor | None:
    """FastAPI dependency: the customer behind a bearer token or a session cookie, or None."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            with pool.connection() as conn:
                return Visitor(portal_tokens.customer_for_token(conn, token.strip()), None)
        except NotFound:
            return None
    session = load_session(pool, request, Audience.PORTAL, now)
    if session is None or session.customer_id is None:
        return None
    return Visitor(session.customer_id, session.csrf)


def require_customer(who: Annotated[Visitor | None, Depends(visitor)]) -> int:
    """FastAPI dependency for the JSON API: the customer, or 401."""
    if who is None:
        raise HTTPException(
            401, "portal token or session required", headers={"WWW-Authenticate": "Bearer"}
        )
    return who.customer_id


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def _lang(request: Request) -> str:
    return pick_language(request.headers.get("accept-language"))


def sign_in_page(request: Request, message: str | None = None, status: int = 401) -> Response:
    """The sign-in form in the browser's language (the customer is not known yet)."""
    return _html(pages.login_html(message, lang=_lang(request)), status)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, code: str | None = None, token: str | None = None) -> Response:
    """The sign-in form; a sign-in link's ``code`` is filled in, never redeemed by a GET."""
    return _html(pages.login_html(prefill=code or token, lang=_lang(request)))


def _customer_for(pool: Pool, secret: str, now: datetime) -> int | None:
    with pool.connection() as conn:
        try:
            return signin_store.redeem_code(conn, normalize_code(secret), now)
        except NotFound:
            pass
        try:
            return portal_tokens.customer_for_token(conn, secret)
        except NotFound:
            return None


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, *, pool: PoolDep, now: NowDep, code: Annotated[str, Form(max_length=200)]
) -> Response:
    """Redeem a one-time code (or a portal token) for a session; 303 to the dashboard."""
    check_origin(request)
    customer_id = _customer_for(pool, code.strip(), now) if code.strip() else None
    if customer_id is None:
        return sign_in_page(request, words(_lang(request))["code_refused"])
    resp = RedirectResponse("/portal/", status_code=303)
    start_session(pool, request, resp, audience=Audience.PORTAL, now=now, customer_id=customer_id)
    return resp


@router.post(
    "/logout", response_class=HTMLResponse,
    responses={303: {"description": "To the sign-in page."}},
)
def logout(
    request: Request,
    *,
    pool: PoolDep,
    now: NowDep,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """End this browser's session (needs the session's CSRF token)."""
    check_origin(request)
    session = load_session(pool, request, Audience.PORTAL, now)
    if session is not None:
        check_csrf(session, csrf)
    resp = RedirectResponse("/portal/login", status_code=303)
    end_session(pool, request, resp, Audience.PORTAL, now)
    return resp


# -- staff ---------------------------------------------------------------------------------------


@staff_router.post("/billing/customers/{customer_id}/portal-sign-in", status_code=201)
def create_sign_in_code(customer_id: Id, pool: PoolDep) -> dict[str, Any]:
    """A one-time sign-in code and link for the customer (shown only here, valid 30 min)."""
    now = datetime.now(UTC)
    code = make_code(secrets.token_bytes(16))
    with http_errors(), pool.connection() as conn, conn.transaction():
        customers.get_customer(conn, customer_id)
        signin_store.add_code(conn, customer_id, code, now, now + CODE_TTL)
    return {
        "customer_id": customer_id,
        "code": code,
        "link": f"/portal/login?code={code}",
        "expires_at": (now + CODE_TTL).isoformat(),
    }


@staff_router.delete("/billing/customers/{customer_id}/portal-sessions")
def revoke_sessions(customer_id: Id, pool: PoolDep) -> dict[str, Any]:
    """End every portal session of the customer at once and void its unused codes."""
    with http_errors(), pool.connection() as conn, conn.transaction():
        customers.get_customer(conn, customer_id)
        ended = signin_store.revoke_customer_sessions(conn, customer_id, datetime.now(UTC))
    return {"customer_id": customer_id, "sessions_ended": ended}
