"""Portal sign-in with one-time codes: single use, expiry, server-side sessions that expire
and can be revoked, cross-site POSTs refused; and the API docs served without internet."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from collector.api.web_session import cookie_name
from collector.signin.model import CODE_TTL, SESSION_TTL, Audience, make_code, normalize_code
from collector.storage import signin_store
from tests.collector.portal.conftest import Clock, make_account

COOKIE = cookie_name(Audience.PORTAL)


def _code(conn: psycopg.Connection[Any], customer_id: int, clock: Clock, code: str) -> str:
    signin_store.add_code(conn, customer_id, code, clock.now, clock.now + CODE_TTL)
    return code


def test_codes_are_typeable() -> None:
    """Ten characters without look-alikes; typed with spaces or dashes in lower case works."""
    code = make_code(bytes(range(16)))
    assert len(code) == 10
    assert not set(code) & set("01ILOU")
    assert normalize_code("abcd-efgh jk") == "ABCDEFGHJK"


def test_staff_make_a_code_that_works_once(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """The staff route returns a code and link; the code signs in once, a replay is refused."""
    acct = make_account(conn, "Once BV")
    made = client.post(f"/billing/customers/{acct.customer_id}/portal-sign-in").json()
    assert made["link"] == f"/portal/login?code={made['code']}"
    link = client.get(made["link"])
    assert link.status_code == 200
    assert "set-cookie" not in link.headers  # opening the link alone signs nobody in
    typed = "-".join([made["code"][:5].lower(), made["code"][5:].lower()])
    r = client.post("/portal/login", data={"code": typed}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/portal/").status_code == 200
    client.cookies.clear()
    again = client.post("/portal/login", data={"code": made["code"]}, follow_redirects=False)
    assert again.status_code == 401
    assert "set-cookie" not in again.headers


def test_an_expired_code_is_refused(
    client: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """A code older than its 30 minutes no longer signs in."""
    acct = make_account(conn, "Late BV")
    code = _code(conn, acct.customer_id, clock, "ABCDEFGHJK")
    clock.now += CODE_TTL + timedelta(seconds=1)
    r = client.post("/portal/login", data={"code": code}, follow_redirects=False)
    assert r.status_code == 401


def test_sessions_expire(client: TestClient, conn: psycopg.Connection[Any], clock: Clock) -> None:
    """A session ends after SESSION_TTL: the cookie then opens nothing."""
    acct = make_account(conn, "Expiry BV")
    code = _code(conn, acct.customer_id, clock, "KJHGFEDCBA")
    client.post("/portal/login", data={"code": code})
    assert client.get("/portal/consumption/meters").status_code == 200
    clock.now += SESSION_TTL
    assert client.get("/portal/consumption/meters").status_code == 401
    assert client.get("/portal/").status_code == 401


def test_staff_revoke_every_session(
    client: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """Revoking a customer's sessions signs out every browser at once and voids unused codes."""
    acct = make_account(conn, "Revoke BV")
    client.post("/portal/login", data={"code": _code(conn, acct.customer_id, clock, "AAAAAAAAAA")})
    spare = _code(conn, acct.customer_id, clock, "BBBBBBBBBB")
    assert client.get("/portal/").status_code == 200
    r = client.delete(f"/billing/customers/{acct.customer_id}/portal-sessions")
    assert r.json()["sessions_ended"] == 1
    assert client.get("/portal/").status_code == 401
    assert client.post("/portal/login", data={"code": spare}).status_code == 401


def test_revoking_tokens_ends_their_sessions(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A browser signed in with a portal token is signed out when the tokens are revoked."""
    acct = make_account(conn, "Token BV")
    client.post("/portal/login", data={"code": acct.token})
    assert client.get("/portal/").status_code == 200
    client.delete(f"/billing/customers/{acct.customer_id}/portal-tokens")
    assert client.get("/portal/").status_code == 401


def test_cross_site_posts_are_refused(
    client: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """A sign-in form posted from another site (login CSRF) is refused and the code kept."""
    acct = make_account(conn, "Origin BV")
    code = _code(conn, acct.customer_id, clock, "CCCCCCCCCC")
    evil = client.post(
        "/portal/login", data={"code": code}, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    ok = client.post(
        "/portal/login",
        data={"code": code},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_bad_sign_in_input_is_4xx(client: TestClient) -> None:
    """A missing or oversized code is a 422, never a 500."""
    assert client.post("/portal/login", data={}).status_code == 422
    assert client.post("/portal/login", data={"code": "x" * 5000}).status_code == 422


def test_api_docs_need_no_internet(client: TestClient) -> None:
    """/docs and /redoc load their scripts and styles from the collector itself."""
    for url in ("/docs", "/redoc"):
        html = client.get(url).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, url
        for a in assets:
            assert a.startswith("/"), (url, a)  # nothing from another host
            assert client.get(a).status_code == 200, a


def test_old_sessions_and_codes_are_purged(
    client: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """Sessions and codes that expired more than a week ago are deleted on the next sign-in."""
    acct = make_account(conn, "Purge BV")
    client.post("/portal/login", data={"code": _code(conn, acct.customer_id, clock, "DDDDDDDDDD")})
    _code(conn, acct.customer_id, clock, "EEEEEEEEEE")  # never used
    clock.now += timedelta(days=9)
    client.cookies.clear()
    client.post("/portal/login", data={"code": acct.token})
    row = conn.execute("SELECT count(*) FROM web_sessions").fetchone()
    assert row == (1,)  # only the new one
    row = conn.execute("SELECT count(*) FROM signin_codes").fetchone()
    assert row == (0,)
