"""Progressive billing end to end on the real database: interim invoices when usage crosses a
threshold, numbered in the gapless series, immutable, once per threshold; the final invoice
deducts exactly what they billed."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from collector.billing.progressive_run import run_progressive_check
from collector.cli import main as cli_main
from collector.rating import parse_plan
from collector.rating.reference import MeterReadings, Period, rate_subscription
from collector.storage import billing_interim_store as interim_store
from collector.storage import billing_invoice_store as invoices
from tests.collector.billing.conftest import make_series, put_usage, spec, utc

D = Decimal
MARCH = PeriodKey(2026, 3)
Conn = psycopg.Connection[Any]
Pool = psycopg_pool.ConnectionPool[Any]

PLAN: dict[str, Any] = {
    "format": "tally.plan/v1",
    "id": "progressive",
    "version": 1,
    "currency": "EUR",
    "charges": [
        {"type": "per_unit", "id": "energy", "unit": "kWh", "price": "0.25"},
        {"type": "recurring", "id": "standing", "amount": "10.00"},
        {"type": "progressive_billing", "id": "interim", "thresholds": ["100", "150"]},
    ],
}
START = utc(2026, 2, 28, 23)  # 1 March, Amsterdam
END = utc(2026, 3, 31, 22)  # 1 April, Amsterdam (743 hours: DST on 29 March)


def _setup(conn: Conn) -> tuple[int, int]:
    c = accounts.create_customer(conn, spec())
    _, v = accounts.create_plan(conn, f"p{c.customer_id}", "Progressive", PLAN)
    sid = make_series(conn, f"dev-{c.customer_id}")
    sub = accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    assert sub.series_id == sid
    return c.customer_id, sid


def test_interim_invoices_then_final_deducts_them(conn: Conn, pool: Pool) -> None:
    """1 kWh an hour at 0.25 = 6.00 EUR a day. 17 days: 102.00 crosses 100 → interim 102.00.
    24 days: 144.00, no new threshold → nothing. Whole month (743 h): 185.75 crosses 150 →
    interim 83.75. Final: 185.75 usage + 10.00 fee − 185.75 in advance = 10.00 (+ 2.10 VAT)."""
    cid, sid = _setup(conn)
    put_usage(conn, sid, START, utc(2026, 3, 17, 23), 0.25)
    with psycopg.connect(conn.info.dsn) as tx:
        first = run_progressive_check(tx, MARCH, utc(2026, 3, 18))
        assert [(i.threshold, i.usage_amount, i.billed_before, i.amount) for i in first] == [
            (D("100"), D("102.00"), D(0), D("102.00"))
        ]
        assert (first[0].tax, first[0].total) == (D("21.42"), D("123.42"))
        assert first[0].number == "INV-2026-000001"
        assert run_progressive_check(tx, MARCH, utc(2026, 3, 18, 1)) == []  # once per threshold
        put_usage(conn, sid, utc(2026, 3, 17, 23), utc(2026, 3, 24, 23), 0.25)
        assert run_progressive_check(tx, MARCH, utc(2026, 3, 25)) == []  # 144.00: none crossed
        put_usage(conn, sid, utc(2026, 3, 24, 23), END, 0.25)
        second = run_progressive_check(tx, MARCH, utc(2026, 4, 1))
        assert [(i.threshold, i.billed_before, i.amount, i.number) for i in second] == [
            (D("150"), D("102.00"), D("83.75"), "INV-2026-000002")
        ]
        assert run_progressive_check(tx, MARCH, utc(2026, 4, 2)) == []
    stored = interim_store.list_interim(conn, customer_id=cid, period="2026-03")
    assert sum(i.amount for i in stored) == D("185.75")

    close_period(pool, MARCH, utc(2026, 4, 10))
    finalize_period(pool, MARCH, utc(2026, 4, 10))
    page = invoices.list_invoices(conn, customer_id=cid, period="2026-03")
    inv = invoices.get_invoice(conn, page.items[0].invoice_id)
    advance = [ln for ln in inv.lines if ln.amount < 0]
    assert [ln.amount for ln in advance] == [D("-185.75")]
    assert (inv.subtotal, inv.tax, inv.total) == (D("10.00"), D("2.10"), D("12.10"))
    assert inv.number == "INV-2026-000003"  # the same gapless series

    # the Decimal reference engine agrees line by line with what was stored
    t0, t1 = int(START.timestamp()), int(END.timestamp())
    ref = rate_subscription(
        parse_plan(PLAN),
        Period(t0, t1, t0, t1, billed_in_advance=D("185.75")),
        {"default": MeterReadings("kWh", 900, [(t, 0.25) for t in range(t0, t1, 900)])},
    )
    assert sorted(li.amount for li in ref) == sorted(ln.amount for ln in inv.lines)


def test_interim_invoices_are_immutable(conn: Conn) -> None:
    _, sid = _setup(conn)
    put_usage(conn, sid, START, utc(2026, 3, 17, 23), 0.25)
    with psycopg.connect(conn.info.dsn) as tx:
        (issued,) = run_progressive_check(tx, MARCH, utc(2026, 3, 18))
    with pytest.raises(psycopg.DatabaseError, match="final and cannot be changed"):
        conn.execute(
            "UPDATE interim_invoices SET amount = 1 WHERE interim_id = %s", (issued.interim_id,)
        )
    with pytest.raises(psycopg.DatabaseError, match="final and cannot be changed"):
        conn.execute("DELETE FROM interim_invoices WHERE interim_id = %s", (issued.interim_id,))
    assert interim_store.get_interim(conn, issued.interim_id) == issued


def test_final_invoice_skips_the_check(conn: Conn, pool: Pool) -> None:
    """Once the period's invoice is final no interim invoice is issued for it."""
    _, sid = _setup(conn)
    put_usage(conn, sid, START, END, 0.25)
    close_period(pool, MARCH, utc(2026, 4, 10))
    finalize_period(pool, MARCH, utc(2026, 4, 10))
    with psycopg.connect(conn.info.dsn) as tx:
        assert run_progressive_check(tx, MARCH, utc(2026, 4, 11)) == []


def test_check_over_http_issues_lists_and_refuses_bad_input(conn: Conn, pool: Pool) -> None:
    cid, sid = _setup(conn)
    put_usage(conn, sid, START, utc(2026, 3, 17, 23), 0.25)
    with TestClient(create_app(pool)) as client:
        url = "/billing/progressive/2026-03/check"
        r = client.post(url, json={"now": "2026-03-18T00:00:00Z"})
        assert r.status_code == 200, r.text
        (issued,) = r.json()["issued"]
        assert (issued["kind"], issued["threshold"], issued["amount"], issued["total"]) == (
            "interim",
            "100",
            "102.00",
            "123.42",
        )
        assert client.post(url, json={"now": "2026-03-18T01:00:00Z"}).json()["issued"] == []
        listed = client.get("/billing/interim-invoices", params={"customer_id": cid}).json()
        assert [i["number"] for i in listed["items"]] == ["INV-2026-000001"]
        one = client.get(f"/billing/interim-invoices/{issued['interim_id']}")
        assert one.json() == issued
        assert client.get("/billing/interim-invoices/999999").status_code == 404
        assert client.post("/billing/progressive/2026-13/check", json={}).status_code == 422
        assert client.post(url, json={"chunk_size": 0}).status_code == 422
        assert client.get("/billing/interim-invoices", params={"period": "x"}).status_code == 422


def test_cli_issues_interim_invoices(
    db: str, conn: Conn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, sid = _setup(conn)
    put_usage(conn, sid, START, utc(2026, 3, 17, 23), 0.25)
    monkeypatch.setenv("TALLY_DATABASE_URL", db)
    argv = ["billing", "progressive-check", "2026-03", "--now", "2026-03-18T00:00:00+00:00"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "INV-2026-000001" in out
    assert "threshold 100" in out
    assert "amount 102.00 EUR" in out
    assert cli_main(argv) == 0
    assert "0 interim invoices issued" in capsys.readouterr().out


def test_late_data_after_finalize_is_corrected_net_of_interim_invoices(
    conn: Conn, pool: Pool
) -> None:
    """March billed 185.75 in advance and deducted it; late data raising 14 March by 0.25 kWh
    per 15 min (24 kWh = 6.00) is an adjustment of exactly 6.00 on April's invoice: the
    re-rating deducts the interim invoices too."""
    cid, sid = _setup(conn)
    put_usage(conn, sid, START, END, 0.25)
    with psycopg.connect(conn.info.dsn) as tx:
        assert len(run_progressive_check(tx, MARCH, utc(2026, 4, 1))) == 1
    close_period(pool, MARCH, utc(2026, 4, 10))
    finalize_period(pool, MARCH, utc(2026, 4, 10))
    put_usage(
        conn, sid, utc(2026, 3, 13, 23), utc(2026, 3, 14, 23), 0.5, updated_at=utc(2026, 4, 15)
    )
    close_period(pool, PeriodKey(2026, 4), utc(2026, 5, 10))
    (april,) = invoices.list_invoices(conn, customer_id=cid, period="2026-04").items
    inv = invoices.get_invoice(conn, april.invoice_id)
    adjustments = [ln.amount for ln in inv.lines if ln.lineage.corrects_invoice_id is not None]
    assert adjustments == [D("6.00")]


def test_concurrent_checks_issue_one_interim_invoice(conn: Conn) -> None:
    """Two checks at once: the subscription row lock serializes them; one invoice, one number."""
    _, sid = _setup(conn)
    put_usage(conn, sid, START, utc(2026, 3, 17, 23), 0.25)
    results: list[int] = []
    errors: list[BaseException] = []

    def check() -> None:
        try:
            with psycopg.connect(conn.info.dsn) as tx:
                results.append(len(run_progressive_check(tx, MARCH, utc(2026, 3, 18))))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(results) == [0, 0, 0, 1]
    numbers = [i.number for i in interim_store.list_interim(conn, period="2026-03")]
    assert numbers == ["INV-2026-000001"]
