"""Wallets over HTTP on a real database: top-ups pay a final invoice once, in order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from collector.storage import billing_invoice_store as invoices
from tests.collector.billing.conftest import conn, db, make_series, plan_doc, pool, spec, utc

__all__ = ["conn", "db", "pool"]  # the billing fixtures, used here too

Conn = psycopg.Connection[Any]


@pytest.fixture
def client(pool: psycopg_pool.ConnectionPool[Any]) -> Iterator[TestClient]:
    with TestClient(create_app(pool)) as c:
        yield c


def _final_invoice(conn: Conn, pool: psycopg_pool.ConnectionPool[Any]) -> tuple[int, int]:
    """A customer with a final March invoice: standing charge 10.00 + 21% VAT = 12.10."""
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    c = accounts.create_customer(conn, spec("Wallet BV"))
    accounts.assign_meter(
        conn, c.customer_id, make_series(conn, "w1"), v.plan_version_id, utc(2026, 1, 1)
    )
    close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    finalize_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    (inv,) = invoices.list_invoices(conn, period="2026-03").items
    return c.customer_id, inv.invoice_id


def test_credits_pay_a_final_invoice_once_in_expiry_order(
    client: TestClient, conn: Conn, pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """Top-ups of 5.00 (expiring first) and 20.00 pay the 12.10 invoice: 5.00 + 7.10; the
    balance is 12.90; a second application is refused with 409."""
    customer, invoice = _final_invoice(conn, pool)
    assert client.post(f"/billing/customers/{customer}/wallet").status_code == 201
    for body in (
        {"credits": "20.00", "granted_at": "2026-04-01T00:00:00Z"},
        {
            "credits": "5.00",
            "granted_at": "2026-04-02T00:00:00Z",
            "expires_at": "2026-06-01T00:00:00Z",
        },
    ):
        assert (
            client.post(f"/billing/customers/{customer}/wallet/top-ups", json=body).status_code
            == 201
        )
    r = client.post(
        f"/billing/invoices/{invoice}/wallet-application", json={"at": "2026-04-15T00:00:00Z"}
    )
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["invoice_total"], got["applied"], got["amount_due"]) == ("12.10", "12.10", "0.00")
    assert [a["amount"] for a in got["allocations"]] == ["5.00", "7.10"]
    assert client.get(f"/billing/customers/{customer}/wallet").json()["balance"] == "12.90"
    again = client.post(f"/billing/invoices/{invoice}/wallet-application", json={})
    assert again.status_code == 409


def test_expired_credits_are_booked_as_expiry_and_do_not_pay(
    client: TestClient, conn: Conn, pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """A 50.00 top-up that expired before the application pays nothing: 12.10 stays due."""
    customer, invoice = _final_invoice(conn, pool)
    client.post(f"/billing/customers/{customer}/wallet")
    client.post(
        f"/billing/customers/{customer}/wallet/top-ups",
        json={
            "credits": "50.00",
            "granted_at": "2026-04-01T00:00:00Z",
            "expires_at": "2026-04-05T00:00:00Z",
        },
    )
    got = client.post(
        f"/billing/invoices/{invoice}/wallet-application", json={"at": "2026-04-15T00:00:00Z"}
    ).json()
    assert (got["applied"], got["amount_due"], got["expired"][0]["amount"]) == (
        "0.00",
        "12.10",
        "50.00",
    )


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/billing/customers/{c}/wallet/top-ups", {"credits": "-1"}, 422),
        ("/billing/customers/{c}/wallet/top-ups", {"credits": "1.001"}, 422),
        ("/billing/customers/999999/wallet/top-ups", {"credits": "1"}, 404),
        ("/billing/invoices/999999/wallet-application", {}, 404),
    ],
)
def test_bad_wallet_requests_are_4xx(
    client: TestClient, conn: Conn, path: str, body: dict[str, Any], status: int
) -> None:
    """Negative or too fine credits are 422; unknown customers or invoices 404."""
    c = accounts.create_customer(conn, spec("Bad BV"))
    client.post(f"/billing/customers/{c.customer_id}/wallet")
    assert client.post(path.format(c=c.customer_id), json=body).status_code == status
