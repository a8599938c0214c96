"""Staff console over HTTP: sign-in with a staff token, one authorization function, plan
preview with the rating engine, period close → review → finalize."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api import portal_routes
from collector.api.access_gate import StaffGate
from collector.api.app import create_app
from collector.billing import accounts
from collector.console.access import Action, StaffMember, authorize
from tests.collector.billing.conftest import plan_doc, put_usage, utc
from tests.collector.portal.conftest import Clock, make_account, make_meter, make_plan

STAFF_TOKEN = "console-staff-token"


@pytest.fixture
def staff(pool: psycopg_pool.ConnectionPool[Any], clock: Clock) -> Iterator[TestClient]:
    """The app with a configured staff token (so the console asks for it)."""
    app = create_app(pool, staff_tokens=[STAFF_TOKEN])
    app.dependency_overrides[portal_routes.get_now] = lambda: clock.now
    with TestClient(app) as c:
        yield c


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m[1]


def _sign_in(c: TestClient) -> None:
    r = c.post("/console/login", data={"token": STAFF_TOKEN}, follow_redirects=False)
    assert r.status_code == 303


def test_authorize_is_the_one_decision() -> None:
    """Roles map to actions in one table: read-only staff cannot finalize, billing can."""
    ro = StaffMember("r", frozenset({"read-only"}))
    billing = StaffMember("b", frozenset({"billing"}))
    tech = StaffMember("t", frozenset({"technician"}))
    assert authorize(ro, Action.VIEW_BILLING)
    assert not authorize(ro, Action.FINALIZE)
    assert authorize(billing, Action.FINALIZE)
    assert authorize(tech, Action.VIEW_FLEET)
    assert not authorize(tech, Action.VIEW_CUSTOMERS)
    assert not authorize(None, Action.VIEW_CUSTOMERS)


def test_console_needs_a_staff_token(staff: TestClient) -> None:
    """Without a session every page is the sign-in form; a wrong token is refused."""
    for url in ("/console/", "/console/customers", "/console/billing", "/console/devices"):
        r = staff.get(url)
        assert r.status_code == 401, url
        assert 'action="/console/login"' in r.text
    bad = staff.post("/console/login", data={"token": "nope"}, follow_redirects=False)
    assert bad.status_code == 401
    assert "set-cookie" not in bad.headers
    _sign_in(staff)
    assert staff.get("/console/customers").status_code == 200
    assert "tally_portal" not in staff.cookies
    assert "tally_session" not in staff.cookies


def test_plan_preview_rates_the_customers_usage(
    staff: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """100 kWh in March on the basic plan (0.25/kWh + 10/month, 21 % tax) previews 42.35;
    on a 0.30/kWh plan 48.40."""
    pv = make_plan(conn)
    dearer = plan_doc(price="0.30", plan_id="dear")
    _, v2 = accounts.create_plan(conn, "dear", "Dear", dearer)
    acct = make_account(conn, "Preview BV")
    sid = make_meter(conn, "pv-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, utc(2026, 3, 10), utc(2026, 3, 11, 1), 1.0)  # 100 kWh
    _sign_in(staff)
    url = f"/console/customers/{acct.customer_id}"
    same = staff.get(url, params={"plan_version": pv, "period": "2026-03"}).text
    assert 'data-total="42.35"' in same
    other = staff.get(url, params={"plan_version": v2.plan_version_id, "period": "2026-03"})
    assert 'data-total="48.40"' in other.text
    bad = staff.get(url, params={"plan_version": 999999, "period": "2026-03"})
    assert bad.status_code == 200
    assert 'role="alert"' in bad.text


def test_close_review_finalize(
    staff: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """Close drafts March; finalize is refused without the review box and the CSRF token, and
    with both, the drafts become numbered final invoices."""
    pv = make_plan(conn)
    acct = make_account(conn, "Close BV")
    sid = make_meter(conn, "cl-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, utc(2026, 3, 10), utc(2026, 3, 11, 1), 1.0)
    clock.now = datetime(2026, 4, 10, tzinfo=UTC)
    _sign_in(staff)
    page = staff.get("/console/billing", params={"period": "2026-03"}).text
    csrf = _csrf(page)
    assert staff.post("/console/billing/2026-03/close", data={"csrf": "x"}).status_code == 403
    r = staff.post("/console/billing/2026-03/close", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    review = staff.get("/console/billing", params={"period": "2026-03"}).text
    assert "Review: 1 draft invoices" in review
    assert 'id="reviewed"' in review
    unticked = staff.post("/console/billing/2026-03/finalize", data={"csrf": csrf})
    assert unticked.status_code == 422
    staff.post("/console/billing/2026-03/finalize", data={"csrf": csrf, "reviewed": "yes"})
    row = conn.execute(
        "SELECT status, number, total FROM invoices WHERE customer_id = %s", (acct.customer_id,)
    ).fetchone()
    assert row is not None
    assert row[0] == "final"
    assert row[1]
    assert Decimal(row[2]) == Decimal("42.35")
    assert (
        "Review: 0 draft invoices (1 final)"
        in staff.get("/console/billing", params={"period": "2026-03"}).text
    )


def test_removing_a_staff_token_ends_its_console_sessions(
    pool: psycopg_pool.ConnectionPool[Any], clock: Clock
) -> None:
    """A console session lasts only as long as its token is configured."""
    app = create_app(pool, staff_tokens=[STAFF_TOKEN, "other-token"])
    app.dependency_overrides[portal_routes.get_now] = lambda: clock.now
    with TestClient(app) as c:
        _sign_in(c)
        assert c.get("/console/customers").status_code == 200
        app.state.staff_gate = StaffGate.create(pool, ["other-token"])
        assert c.get("/console/customers").status_code == 401


def test_console_follows_the_staff_keys_role_and_revocation(
    pool: psycopg_pool.ConnectionPool[Any], clock: Clock
) -> None:
    """A technician's key opens the fleet but not customers; a billing key opens customers;
    revoking the key ends its console session on the next page."""
    app = create_app(pool, staff_tokens=[STAFF_TOKEN])
    app.dependency_overrides[portal_routes.get_now] = lambda: clock.now
    admin = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    with TestClient(app) as c:
        keys = {}
        for role in ("technician", "billing"):
            r = c.post("/staff/keys", json={"name": role, "role": role}, headers=admin)
            assert r.status_code == 201, r.text
            keys[role] = r.json()
    with TestClient(app) as tech:
        r = tech.post("/console/login", data={"token": keys["technician"]["key"]},
                      follow_redirects=False)
        assert r.status_code == 303
        assert tech.get("/console/devices").status_code == 200
        assert tech.get("/console/customers").status_code == 403
    with TestClient(app) as bill:
        r = bill.post("/console/login", data={"token": keys["billing"]["key"]},
                      follow_redirects=False)
        assert r.status_code == 303
        assert bill.get("/console/customers").status_code == 200
        key_id = keys["billing"]["key_id"]
        assert bill.delete(f"/staff/keys/{key_id}", headers=admin).status_code == 200
        assert bill.get("/console/customers").status_code == 401
    with TestClient(app) as anyone:
        r = anyone.post("/console/login", data={"token": "not-a-key"}, follow_redirects=False)
        assert r.status_code == 401


def test_fleet_health(staff: TestClient, conn: psycopg.Connection[Any], clock: Clock) -> None:
    """A device heard from 5 minutes ago is online, one silent for a day offline, and a device
    whose own status says so is shown with that state and its buffer depth."""
    now = clock.now
    rows = [
        ("dev-fresh", now.replace(minute=55, hour=11)),
        ("dev-silent", now.replace(day=9)),
        ("dev-status", now.replace(day=9)),
    ]
    for device, seen in rows:
        conn.execute(
            "INSERT INTO device_ingest (device_id, batches, readings, first_seq, last_seq,"
            " last_seen) VALUES (%s, 3, 30, 1, 3, %s)",
            (device, seen),
        )
    conn.execute(
        "INSERT INTO device_status (device_id, received_at, state, buffer_depth, payload)"
        " VALUES ('dev-status', %s, 'draining', 1234, '{}')",
        (now,),
    )
    _sign_in(staff)
    html = staff.get("/console/devices").text
    cells = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td>", html)
    assert dict(cells) == {"dev-fresh": "online", "dev-silent": "offline", "dev-status": "draining"}
    assert "1234" in html
