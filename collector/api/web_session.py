"""Browser sessions for the portal and the staff console: the cookie, the origin check and the
CSRF check (rules in ``collector.signin.model``, storage in ``collector.storage.signin_store``).

The session cookie holds a random session id only (never a long-lived token); it is
``HttpOnly``, ``SameSite=Strict``, limited to its area's path, ``Secure`` over https, and
lives no longer than the session. Every POST of a signed-in form must carry the session's CSRF
token, and a POST whose ``Origin`` (or, without one, ``Referer``) names another site is refused
before anything is read from the database.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import Response

from collector.errors import NotFound
from collector.signin.model import SESSION_TTL, Audience, Session, csrf_matches
from collector.storage import signin_store
from collector.storage.database import Pool

__all__ = [
    "PAGE_HEADERS",
    "check_csrf",
    "check_origin",
    "end_session",
    "load_session",
    "start_session",
]

COOKIES = {
    Audience.PORTAL: ("tally_session", "/portal"),
    Audience.CONSOLE: ("tally_console", "/console"),
}

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def cookie_name(audience: Audience) -> str:
    return COOKIES[audience][0]


def check_origin(request: Request) -> None:
    """403 when a POST comes from a page of another origin (login CSRF, cross-site forms)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return  # no claim made (non-browser clients); the CSRF token still has to match
    host = request.headers.get("host", "")
    if urlsplit(source).netloc != host:
        raise HTTPException(403, "cross-site request refused")


def check_csrf(session: Session, given: str | None) -> None:
    """403 unless the form carried this session's CSRF token."""
    if not csrf_matches(session.csrf, given):
        raise HTTPException(403, "missing or wrong CSRF token")


def load_session(pool: Pool, request: Request, audience: Audience, now: datetime) -> Session | None:
    """The live session named by the request's cookie, or None."""
    sid = request.cookies.get(cookie_name(audience))
    if not sid:
        return None
    try:
        with pool.connection() as conn:
            return signin_store.session_for(conn, sid, audience, now)
    except NotFound:
        return None


def start_session(
    pool: Pool,
    request: Request,
    response: Response,
    *,
    audience: Audience,
    now: datetime,
    customer_id: int | None = None,
    staff: str | None = None,
) -> Session:
    """Create a session and put its id in ``response``'s cookie."""
    sid = secrets.token_urlsafe(32)
    session = Session(
        audience, customer_id, staff, secrets.token_urlsafe(24), now, now + SESSION_TTL
    )
    with pool.connection() as conn:
        signin_store.create_session(conn, sid, session)
    name, path = COOKIES[audience]
    response.set_cookie(
        name,
        sid,
        max_age=int(SESSION_TTL.total_seconds()),
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return session


def end_session(
    pool: Pool, request: Request, response: Response, audience: Audience, now: datetime
) -> None:
    """Revoke the request's session (if any) and drop its cookie."""
    name, path = COOKIES[audience]
    sid = request.cookies.get(name)
    if sid:
        with pool.connection() as conn:
            signin_store.revoke_session(conn, sid, now)
    response.delete_cookie(name, path=path)
