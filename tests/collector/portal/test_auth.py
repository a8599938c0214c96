"""Portal authentication: bearer tokens, the login cookie, and 401s."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.testclient import TestClient

from collector.api.web_session import cookie_name
from collector.billing import accounts
from collector.signin.model import Audience
from collector.storage import billing_portal_store
from tests.collector.billing.conftest import utc
from tests.collector.portal.conftest import make_account, make_meter, make_plan

COOKIE = cookie_name(Audience.PORTAL)
_API = ("/portal/consumption/meters", "/portal/consumption/current", "/portal/invoices")


def test_api_without_or_with_a_bad_token_is_401(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """No token, an unknown token and a non-bearer header are all 401 with WWW-Authenticate."""
    make_account(conn, "A")
    for url in _API:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
            r = client.get(url, headers=headers)
            assert r.status_code == 401, (url, headers)
            assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_token_is_401(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """A revoked token no longer opens the consumption API."""
    acct = make_account(conn, "A")
    assert client.get("/portal/consumption/meters", headers=acct.auth).status_code == 200
    billing_portal_store.revoke_tokens(conn, acct.customer_id, utc(2026, 4, 1))
    assert client.get("/portal/consumption/meters", headers=acct.auth).status_code == 401


def test_pages_without_a_token_show_the_sign_in_page(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """The dashboard, a meter page and an invoice page answer 401 with a sign-in form."""
    make_account(conn, "A")
    for url in ("/portal/", "/portal/meters/1", "/portal/invoices/1"):
        r = client.get(url, headers={"Accept": "text/html"})
        assert r.status_code == 401, url
        assert r.headers["content-type"].startswith("text/html")
        assert 'action="/portal/login"' in r.text


def _sign_in(client: TestClient, secret: str) -> Any:
    return client.post("/portal/login", data={"code": secret}, follow_redirects=False)


def test_login_sets_a_strict_httponly_session_cookie(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A POSTed token is exchanged for a session: the cookie holds a random session id (not the
    token), HttpOnly, SameSite=Strict, path /portal; the answer is a 303 to the dashboard."""
    acct = make_account(conn, "A")
    r = _sign_in(client, acct.token)
    assert r.status_code == 303
    assert r.headers["location"] == "/portal/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert acct.token not in cookie
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/portal"} <= attrs
    assert "secure" not in attrs  # plain http here; set over https


def test_a_login_link_never_signs_in_by_get(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Opening a sign-in link shows the form with the code filled in and sets no cookie."""
    acct = make_account(conn, "A")
    r = client.get("/portal/login", params={"token": acct.token}, follow_redirects=False)
    assert r.status_code == 200
    assert 'method="post" action="/portal/login"' in r.text
    assert "set-cookie" not in r.headers


def test_cookie_opens_pages_and_api(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """After sign-in the browser's session cookie alone opens the dashboard and the JSON API."""
    acct = make_account(conn, "Cookie Co")
    _sign_in(client, acct.token)
    r = client.get("/portal/")
    assert r.status_code == 200
    assert "Cookie Co" in r.text
    assert client.get("/portal/consumption/meters").status_code == 200


def test_login_with_a_bad_token_is_401(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """An unknown code gets the sign-in page again and no cookie."""
    make_account(conn, "A")
    r = _sign_in(client, "wrong")
    assert r.status_code == 401
    assert "unknown, has expired or has already been used" in r.text
    assert "set-cookie" not in r.headers


def test_logout_ends_the_session(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """Sign-out (POST with the CSRF token) revokes the session server-side: the old cookie
    value no longer opens anything even if a browser kept it."""
    acct = make_account(conn, "A")
    _sign_in(client, acct.token)
    sid = client.cookies[COOKIE]
    page = client.get("/portal/").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert client.post("/portal/logout", data={"csrf": "forged"}).status_code == 403
    r = client.post("/portal/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/portal/").status_code == 401
    client.cookies.set(COOKIE, sid, path="/portal")
    assert client.get("/portal/").status_code == 401
    assert client.get("/portal/consumption/meters").status_code == 401


def test_a_meter_of_another_customer_is_404_on_the_page(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A's browser asking for B's meter page gets 404, as for a meter that does not exist."""
    pv = make_plan(conn)
    a = make_account(conn, "A")
    b = make_account(conn, "B")
    sid = make_meter(conn, "b-meter")
    accounts.assign_meter(conn, b.customer_id, sid, pv, utc(2026, 3, 1))
    assert client.get(f"/portal/meters/{sid}", headers=a.auth).status_code == 404
    assert client.get("/portal/meters/424242", headers=a.auth).status_code == 404
    assert client.get(f"/portal/meters/{sid}", headers=b.auth).status_code == 200
