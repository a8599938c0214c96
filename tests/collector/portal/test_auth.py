"""Portal authentication: bearer tokens, the login cookie, and 401s."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.testclient import TestClient

from collector.api.portal_routes import COOKIE
from collector.billing import accounts
from collector.storage import billing_portal_store
from tests.collector.billing.conftest import utc
from tests.collector.portal.conftest import make_account, make_meter, make_plan

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


def test_login_sets_a_strict_httponly_cookie(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A good token is exchanged for an HttpOnly, SameSite=Strict cookie and a page that
    moves on to the dashboard by itself (same-site, so the cookie goes along)."""
    acct = make_account(conn, "A")
    r = client.get("/portal/login", params={"token": acct.token}, follow_redirects=False)
    assert r.status_code == 200
    assert '<meta http-equiv="refresh" content="0; url=/portal/">' in r.text
    assert acct.token not in r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={acct.token};")
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/portal"} <= attrs
    assert "secure" not in attrs  # plain http here; set over https


def test_cookie_opens_pages_and_api(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """After login the browser's cookie alone opens the dashboard and the JSON API."""
    acct = make_account(conn, "Cookie Co")
    client.get("/portal/login", params={"token": acct.token})
    r = client.get("/portal/")
    assert r.status_code == 200
    assert "Cookie Co" in r.text
    assert client.get("/portal/consumption/meters").status_code == 200


def test_login_with_a_bad_token_is_401(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """An unknown token gets the sign-in page again and no cookie."""
    make_account(conn, "A")
    r = client.get("/portal/login", params={"token": "wrong"}, follow_redirects=False)
    assert r.status_code == 401
    assert "unknown or has been revoked" in r.text
    assert f"{COOKIE}=wrong" not in r.headers.get("set-cookie", "")


def test_logout_forgets_the_cookie(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """After logout the dashboard asks to sign in again."""
    acct = make_account(conn, "A")
    client.get("/portal/login", params={"token": acct.token})
    client.get("/portal/logout")
    assert client.get("/portal/").status_code == 401


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
