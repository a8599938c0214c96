"""Customer portal: token authentication and visibility of invoices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api import billing_routes, portal_routes
from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from tests.collector.billing.conftest import make_series, plan_doc, spec, utc


@pytest.fixture
def client(pool: psycopg_pool.ConnectionPool[Any]) -> Iterator[TestClient]:
    """The collector app with the billing and portal routers."""
    app = create_app(pool)
    app.include_router(billing_routes.router)
    app.include_router(portal_routes.router)
    with TestClient(app) as c:
        yield c


def _two_customers(conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]) -> None:
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    for name in ("A", "B"):
        c = accounts.create_customer(conn, spec(name))
        sid = make_series(conn, f"dev-{name}")
        accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    finalize_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    close_period(pool, PeriodKey(2026, 4), utc(2026, 5, 10))  # April stays a draft


def test_customer_sees_only_its_final_invoices(
    client: TestClient, conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """Customer A lists its March invoice; B's invoice and A's April draft are 404."""
    _two_customers(conn, pool)
    token = client.post("/billing/customers/1/portal-tokens").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    items = client.get("/portal/invoices", headers=auth).json()["items"]
    assert [(i["customer_id"], i["period"]) for i in items] == [(1, "2026-03")]
    mine = items[0]["invoice_id"]
    assert client.get(
        f"/portal/invoices/{mine}", params={"format": "pdf"}, headers=auth
    ).content.startswith(b"%PDF")
    others = [
        r[0]
        for r in conn.execute(
            "SELECT invoice_id FROM invoices WHERE invoice_id <> %s", (mine,)
        ).fetchall()
    ]
    for other in others:
        assert client.get(f"/portal/invoices/{other}", headers=auth).status_code == 404


def test_missing_or_revoked_token_is_401(
    client: TestClient, conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """No token, a wrong token and a revoked token are all refused."""
    _two_customers(conn, pool)
    token = client.post("/billing/customers/1/portal-tokens").json()["token"]
    assert client.get("/portal/invoices").status_code == 401
    assert (
        client.get("/portal/invoices", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert client.delete("/billing/customers/1/portal-tokens").json()["revoked"] == 1
    assert (
        client.get("/portal/invoices", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
