"""Drafts are stored through a staging table: several chunks in one transaction stay apart."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg

from collector.billing import accounts
from collector.billing.close import CloseConfig, PlanCache, draft_chunk
from collector.billing.periods import PeriodKey
from collector.storage import billing_invoice_store as invoices
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc

Conn = psycopg.Connection[Any]
MARCH = PeriodKey(2026, 3)
NOW = utc(2026, 4, 10)


def _customer(conn: Conn, price: str) -> int:
    c = accounts.create_customer(conn, spec())
    _, v = accounts.create_plan(conn, f"p{c.customer_id}", "Basic", plan_doc(price))
    sid = make_series(conn, f"dev-{c.customer_id}")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 2, 28), utc(2026, 4, 2), 1.0)
    return c.customer_id


def test_two_chunks_in_one_transaction_each_write_their_own_invoices(conn: Conn) -> None:
    """The second chunk must not re-insert the first chunk's staged rows, and re-drafting the
    first chunk in the same transaction replaces its invoice instead of adding one."""
    a, b = _customer(conn, "0.25"), _customer(conn, "0.50")
    cfg, plans = CloseConfig(grace=timedelta(days=3)), PlanCache()
    with conn.transaction():
        assert draft_chunk(conn, MARCH, [a], now=NOW, config=cfg, plans=plans)[0] == 1
        assert draft_chunk(conn, MARCH, [b], now=NOW, config=cfg, plans=plans)[0] == 1
        assert draft_chunk(conn, MARCH, [a], now=NOW, config=cfg, plans=plans)[0] == 1
    rows = conn.execute(
        "SELECT customer_id, count(*), sum(subtotal) FROM invoices WHERE period = '2026-03'"
        " GROUP BY customer_id ORDER BY customer_id"
    ).fetchall()
    # 2972 kWh in March (Amsterdam) × price + 10.00 standing charge
    assert rows == [(a, 1, Decimal("753.00")), (b, 1, Decimal("1496.00"))]
    for cid in (a, b):
        page = invoices.list_invoices(conn, customer_id=cid, period="2026-03")
        inv = invoices.get_invoice(conn, page.items[0].invoice_id)
        assert sum(ln.amount for ln in inv.lines) == inv.subtotal
    assert conn.execute("SELECT count(*) FROM invoice_draft_stage").fetchone() == (0,)


def test_a_chunk_drafted_outside_a_transaction_is_stored(conn: Conn) -> None:
    """On an autocommit connection with no transaction open the staged rows still reach the
    invoices (staging, upsert and emptying run in one transaction of their own)."""
    a = _customer(conn, "0.25")
    cfg = CloseConfig(grace=timedelta(days=3))
    assert draft_chunk(conn, MARCH, [a], now=NOW, config=cfg, plans=PlanCache()) == (1, 2)
    row = conn.execute(
        "SELECT count(*), sum(subtotal) FROM invoices WHERE customer_id = %s", (a,)
    ).fetchone()
    assert row == (1, Decimal("753.00"))
