"""Wallet consumption at finalize on a real database: with ``auto_apply_wallet`` the usable
credits pay each invoice as it is finalized, expiring first, in the finalize transaction."""

from __future__ import annotations

import json
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
Pool = psycopg_pool.ConnectionPool[Any]
MARCH = PeriodKey(2026, 3)


@pytest.fixture
def client(pool: Pool) -> Iterator[TestClient]:
    with TestClient(create_app(pool)) as c:
        yield c


def _customer(conn: Conn, client: TestClient, name: str, top_ups: list[dict[str, str]]) -> int:
    """A customer billed 10.00 + 21% VAT = 12.10 for March, with a wallet holding ``top_ups``."""
    _, v = accounts.create_plan(conn, f"plan-{name}", "Basic", plan_doc())
    c = accounts.create_customer(conn, spec(name))
    accounts.assign_meter(
        conn, c.customer_id, make_series(conn, f"dev-{name}"), v.plan_version_id, utc(2026, 1, 1)
    )
    assert client.post(f"/billing/customers/{c.customer_id}/wallet").status_code == 201
    for body in top_ups:
        r = client.post(f"/billing/customers/{c.customer_id}/wallet/top-ups", json=body)
        assert r.status_code == 201, r.text
    return c.customer_id


def _invoice(conn: Conn, customer_id: int) -> int:
    (inv,) = invoices.list_invoices(conn, customer_id=customer_id, period="2026-03").items
    return inv.invoice_id


def _shown(client: TestClient, invoice_id: int) -> tuple[str, str, str]:
    doc = json.loads(client.get(f"/invoices/{invoice_id}").content)
    return doc["total"], doc["credits_applied"], doc["amount_due"]


def test_finalize_run_pays_with_credits_expiring_first(
    client: TestClient, conn: Conn, pool: Pool
) -> None:
    """Usable at 10 April: 3.00 (expires 20 April), 5.00 (1 May), 20.00 (never); 4.00 expired
    on 5 April. The 12.10 invoice takes 3.00 + 5.00 + 4.10; the expired 4.00 is booked as
    expiry, 15.90 stays. A customer without the option is not touched."""
    opted = _customer(
        conn,
        client,
        "Opted",
        [
            {"credits": "20.00", "granted_at": "2026-03-01T00:00:00Z"},
            {
                "credits": "5.00",
                "granted_at": "2026-03-01T00:00:00Z",
                "expires_at": "2026-05-01T00:00:00Z",
            },
            {
                "credits": "3.00",
                "granted_at": "2026-04-01T00:00:00Z",
                "expires_at": "2026-04-20T00:00:00Z",
            },
            {
                "credits": "4.00",
                "granted_at": "2026-03-01T00:00:00Z",
                "expires_at": "2026-04-05T00:00:00Z",
            },
        ],
    )
    other = _customer(
        conn, client, "Manual", [{"credits": "50.00", "granted_at": "2026-03-01T00:00:00Z"}]
    )
    url = f"/billing/customers/{opted}/wallet/auto-apply"
    assert client.get(url).json()["auto_apply_wallet"] is False
    assert client.put(url, json={"auto_apply_wallet": True}).json()["auto_apply_wallet"] is True
    close_period(pool, MARCH, utc(2026, 4, 10))
    assert _shown(client, _invoice(conn, opted)) == ("12.10", "0.00", "12.10")  # drafts: nothing
    finalize_period(pool, MARCH, utc(2026, 4, 10))

    inv = _invoice(conn, opted)
    assert _shown(client, inv) == ("12.10", "12.10", "0.00")
    uses = conn.execute(
        "SELECT t.credits, u.kind, u.amount FROM wallet_uses u JOIN wallet_top_ups t"
        " USING (top_up_id) JOIN wallets w USING (wallet_id) WHERE w.customer_id = %s"
        " ORDER BY u.use_id",
        (opted,),
    ).fetchall()
    assert [(str(c), k, str(a)) for c, k, a in uses] == [
        ("4.00", "expiry", "4.00"),
        ("3.00", "invoice", "3.00"),
        ("5.00", "invoice", "5.00"),
        ("20.00", "invoice", "4.10"),
    ]
    assert client.get(f"/billing/customers/{opted}/wallet").json()["balance"] == "15.90"

    manual = _invoice(conn, other)
    assert _shown(client, manual) == ("12.10", "0.00", "12.10")
    assert client.get(f"/billing/customers/{other}/wallet").json()["balance"] == "50.00"
    r = client.post(f"/billing/invoices/{manual}/wallet-application", json={})
    assert r.status_code == 201  # staff can still apply credits by hand


def test_finalizing_one_invoice_pays_what_credits_allow(
    client: TestClient, conn: Conn, pool: Pool
) -> None:
    """5.00 of credits pay part of the 12.10 invoice finalized through the API: 7.10 due.
    A second customer with an empty wallet gets nothing recorded, so a later manual
    application after a top-up still works."""
    cid = _customer(
        conn, client, "Partial", [{"credits": "5.00", "granted_at": "2026-03-01T00:00:00Z"}]
    )
    empty = _customer(conn, client, "Empty", [])
    for c in (cid, empty):
        client.put(f"/billing/customers/{c}/wallet/auto-apply", json={"auto_apply_wallet": True})
    close_period(pool, MARCH, utc(2026, 4, 10))
    for c in (cid, empty):
        r = client.post(
            f"/invoices/{_invoice(conn, c)}/finalize", json={"now": "2026-04-10T00:00:00Z"}
        )
        assert r.status_code == 200, r.text
    assert _shown(client, _invoice(conn, cid)) == ("12.10", "5.00", "7.10")
    assert _shown(client, _invoice(conn, empty)) == ("12.10", "0.00", "12.10")
    client.post(
        f"/billing/customers/{empty}/wallet/top-ups",
        json={"credits": "1.00", "granted_at": "2026-04-11T00:00:00Z"},
    )
    r = client.post(
        f"/billing/invoices/{_invoice(conn, empty)}/wallet-application",
        json={"at": "2026-04-12T00:00:00Z"},
    )
    assert r.status_code == 201, r.text
    assert _shown(client, _invoice(conn, empty)) == ("12.10", "1.00", "11.10")


def test_auto_apply_option_refuses_bad_requests(client: TestClient, conn: Conn) -> None:
    c = accounts.create_customer(conn, spec("No wallet"))
    url = f"/billing/customers/{c.customer_id}/wallet/auto-apply"
    assert client.put(url, json={"auto_apply_wallet": True}).status_code == 404
    assert client.get(url).status_code == 404
    assert client.put(url, json={"auto_apply_wallet": "maybe"}).status_code == 422
    assert client.put(url, json={}).status_code == 422
    assert (
        client.put(
            "/billing/customers/0/wallet/auto-apply", json={"auto_apply_wallet": True}
        ).status_code
        == 422
    )
