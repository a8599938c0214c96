"""Pay-in-advance fees on the real database: billed at the start of the period on an invoice
of their own (gapless number, once per customer and period), left off the final invoice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.advance_run import run_advance_billing
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from collector.cli import main as cli_main
from collector.storage import billing_advance_store as advance_store
from collector.storage import billing_invoice_store as invoices
from tests.collector.billing.conftest import make_series, put_usage, spec, utc

D = Decimal
MARCH = PeriodKey(2026, 3)
Conn = psycopg.Connection[Any]
Pool = psycopg_pool.ConnectionPool[Any]


def _plan(in_advance: bool) -> dict[str, Any]:
    return {
        "format": "tally.plan/v1",
        "id": "adv",
        "version": 1,
        "currency": "EUR",
        "charges": [
            {"type": "per_unit", "id": "energy", "unit": "kWh", "price": "0.25"},
            {
                "type": "recurring",
                "id": "standing",
                "amount": "10.00",
                "pay_in_advance": in_advance,
            },
            {"type": "recurring", "id": "service", "amount": "3.10"},
        ],
    }


def _customer(conn: Conn, name: str, in_advance: bool, start: Any = None) -> tuple[int, int]:
    c = accounts.create_customer(conn, spec(name))
    _, v = accounts.create_plan(conn, f"p-{name}", "Adv", _plan(in_advance))
    sid = make_series(conn, f"dev-{name}")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, start or utc(2026, 1, 1))
    return c.customer_id, sid


def test_fee_billed_at_period_start_then_left_off_the_final_invoice(conn: Conn, pool: Pool) -> None:
    """Standing 10.00 in advance: advance invoice 10.00 + 2.10 VAT on 1 March. Final: 2972 kWh
    x 0.25 = 743.00 + service 3.10 (in arrear) = 746.10, no standing line. A customer whose
    plan bills the fee in arrear gets no advance invoice and the fee on its final invoice."""
    cid, sid = _customer(conn, "Ahead", True)
    other, osid = _customer(conn, "Arrear", False)
    with psycopg.connect(conn.info.dsn) as tx:
        (adv,) = run_advance_billing(tx, MARCH, utc(2026, 2, 28, 23, 5))
        assert run_advance_billing(tx, MARCH, utc(2026, 3, 2)) == []  # once per period
    assert (adv.customer_id, adv.subtotal, adv.tax, adv.total) == (
        cid,
        D("10.00"),
        D("2.10"),
        D("12.10"),
    )
    assert adv.number == "INV-2026-000001"
    assert [(ln["charge_id"], ln["amount"]) for ln in adv.lines] == [("standing", "10.00")]
    assert advance_store.list_advance(conn, customer_id=cid, period="2026-03") == [adv]

    for s in (sid, osid):
        put_usage(conn, s, utc(2026, 2, 28), utc(2026, 4, 2), 1.0)
    close_period(pool, MARCH, utc(2026, 4, 10))
    finalize_period(pool, MARCH, utc(2026, 4, 10))
    (ahead,) = invoices.list_invoices(conn, customer_id=cid, period="2026-03").items
    inv = invoices.get_invoice(conn, ahead.invoice_id)
    assert inv.subtotal == D("746.10")
    assert not any("standing" in ln.description for ln in inv.lines)
    (arrear,) = invoices.list_invoices(conn, customer_id=other, period="2026-03").items
    assert invoices.get_invoice(conn, arrear.invoice_id).subtotal == D("756.10")
    numbers = sorted([inv.number or "", arrear.number or ""])
    assert numbers == ["INV-2026-000002", "INV-2026-000003"]  # the same gapless series


def test_partial_first_period_is_prorated_and_immutable(conn: Conn) -> None:
    """A subscription from 11 March (Amsterdam): 21 of 31 days of 10.00 = 6.774… → 6.77."""
    cid, _ = _customer(conn, "Late", True, start=utc(2026, 3, 10, 23))
    with psycopg.connect(conn.info.dsn) as tx:
        (adv,) = run_advance_billing(tx, MARCH, utc(2026, 3, 11))
    assert adv.subtotal == D("6.77")
    with pytest.raises(psycopg.DatabaseError, match="final and cannot be changed"):
        conn.execute("DELETE FROM advance_invoices WHERE advance_id = %s", (adv.advance_id,))
    assert adv.customer_id == cid


def test_run_over_http_and_cli(
    db: str,
    conn: Conn,
    pool: Pool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cid, _ = _customer(conn, "Http", True)
    with TestClient(create_app(pool)) as client:
        r = client.post("/billing/advance/2026-03/run", json={"now": "2026-03-01T00:00:00Z"})
        assert r.status_code == 200, r.text
        (one,) = r.json()["issued"]
        assert (one["kind"], one["customer_id"], one["total"]) == ("advance", cid, "12.10")
        listed = client.get("/billing/advance-invoices", params={"period": "2026-03"}).json()
        assert [a["number"] for a in listed["items"]] == ["INV-2026-000001"]
        assert client.post("/billing/advance/2026-00/run", json={}).status_code == 422
        assert client.post("/billing/advance/2026-03/run", json={"x": 1}).status_code == 422
    monkeypatch.setenv("TALLY_DATABASE_URL", db)
    assert cli_main(["billing", "advance", "2026-04", "--now", "2026-04-01T00:00:00+02:00"]) == 0
    out = capsys.readouterr().out
    assert "INV-2026-000002" in out
    assert "1 advance invoices issued" in out
