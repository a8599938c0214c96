"""Period close end to end on the real database: hand-checked invoice totals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest

from collector.billing import accounts
from collector.billing.close import CloseConfig, close_period, finalize_period, refresh_period
from collector.billing.model import LineKind
from collector.billing.periods import PeriodKey
from collector.errors import NotReady, ValidationFailed
from collector.storage import billing_invoice_store as invoices
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc

D = Decimal
MARCH = PeriodKey(2026, 3)
NOW = utc(2026, 4, 10)
Pool = psycopg_pool.ConnectionPool[Any]
Conn = psycopg.Connection[Any]


def _setup(conn: Conn, tz: str = "Europe/Amsterdam", price: str = "0.25") -> tuple[int, int, int]:
    c = accounts.create_customer(conn, spec(tz=tz))
    _, v = accounts.create_plan(conn, f"p{c.customer_id}", "Basic", plan_doc(price))
    sid = make_series(conn, f"dev-{c.customer_id}")
    return c.customer_id, sid, v.plan_version_id


def _only_invoice(conn: Conn, customer_id: int, period: str = "2026-03") -> Any:
    page = invoices.list_invoices(conn, customer_id=customer_id, period=period)
    assert len(page.items) == 1
    return invoices.get_invoice(conn, page.items[0].invoice_id)


def test_amsterdam_march_bills_743_hours(conn: Conn, pool: Pool) -> None:
    """March in Amsterdam: 2972 kWh x 0.25 + 10.00 = 753.00, VAT 158.13, total 911.13."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 2, 28), utc(2026, 4, 2), 1.0)  # a day of slack each side
    close_period(pool, MARCH, NOW)
    inv = _only_invoice(conn, cid)
    energy = next(ln for ln in inv.lines if ln.kind is LineKind.USAGE)
    assert energy.quantity == D("2972")
    assert (inv.subtotal, inv.tax, inv.total) == (D("753.00"), D("158.13"), D("911.13"))


def test_amsterdam_october_bills_745_hours(conn: Conn, pool: Pool) -> None:
    """October in Amsterdam: 2980 kWh x 0.25 + 10.00 = 755.00, VAT 158.55, total 913.55."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 9, 29), utc(2026, 11, 2), 1.0)
    close_period(pool, PeriodKey(2026, 10), utc(2026, 11, 10))
    inv = _only_invoice(conn, cid, "2026-10")
    assert (inv.subtotal, inv.tax, inv.total) == (D("755.00"), D("158.55"), D("913.55"))


def test_kiritimati_month_follows_local_midnights(conn: Conn, pool: Pool) -> None:
    """UTC+14: only usage from 28 Feb 10:00Z to 31 Mar 10:00Z is March: 2976 kWh -> 754.00."""
    cid, sid, pv = _setup(conn, tz="Pacific/Kiritimati")
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 2, 27), utc(2026, 4, 2), 1.0)
    close_period(pool, MARCH, NOW)
    inv = _only_invoice(conn, cid)
    assert inv.period_start == utc(2026, 2, 28, 10)
    assert inv.subtotal == D("754.00")


def test_plan_change_on_the_11th_splits_usage_and_prorates_fees(conn: Conn, pool: Pool) -> None:
    """10 days at 0.25 (960 kWh) + 21 days at 0.30 (2012 kWh, DST day) with fees 10/31, 21/31."""
    cid, sid, pv1 = _setup(conn)
    plan = accounts.new_plan_version(conn, 1, plan_doc("0.30"))
    sub = accounts.assign_meter(conn, cid, sid, pv1, utc(2026, 1, 1))
    accounts.change_plan(conn, sub.subscription_id, plan.plan_version_id, utc(2026, 3, 10, 23))
    put_usage(conn, sid, utc(2026, 2, 28), utc(2026, 4, 2), 1.0)
    close_period(pool, MARCH, NOW)
    inv = _only_invoice(conn, cid)
    amounts = sorted(ln.amount for ln in inv.lines)
    assert amounts == [D("3.23"), D("6.77"), D("240.00"), D("603.60")]
    assert inv.subtotal == D("853.60")
    assert inv.tax == D("179.26")  # 21% of 853.60 = 179.256
    assert inv.total == D("1032.86")


def test_meter_moved_mid_month_is_billed_to_each_customer_for_its_days(
    conn: Conn, pool: Pool
) -> None:
    """Moved at local midnight of the 16th: A pays 15 days (1440 kWh), B 16 days (1532 kWh)."""
    a, sid, pv = _setup(conn)
    b = accounts.create_customer(conn, spec("B")).customer_id
    sub = accounts.assign_meter(conn, a, sid, pv, utc(2026, 1, 1))
    accounts.move_meter(conn, sub.subscription_id, b, utc(2026, 3, 15, 23))
    put_usage(conn, sid, utc(2026, 2, 28), utc(2026, 4, 2), 1.0)
    close_period(pool, MARCH, NOW)
    inv_a, inv_b = _only_invoice(conn, a), _only_invoice(conn, b)
    assert sorted(ln.amount for ln in inv_a.lines) == [D("4.84"), D("360.00")]
    assert sorted(ln.amount for ln in inv_b.lines) == [D("5.16"), D("383.00")]


def test_close_twice_creates_nothing_new(conn: Conn, pool: Pool) -> None:
    """A second close of the same period returns the first run and keeps the same invoices."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 2, 28), utc(2026, 4, 2), 1.0)
    first = close_period(pool, MARCH, NOW)
    before = _only_invoice(conn, cid)
    second = close_period(pool, MARCH, NOW + timedelta(hours=1))
    after = _only_invoice(conn, cid)
    assert second.run_id == first.run_id
    assert after == before
    n_lines = conn.execute("SELECT count(*) FROM invoice_lines").fetchone()
    assert n_lines is not None
    assert n_lines[0] == len(before.lines)


def test_refresh_picks_up_late_readings_within_grace(conn: Conn, pool: Pool) -> None:
    """A reading arriving after the draft raises the draft on refresh (same invoice id)."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 2), 1.0)
    close_period(pool, MARCH, utc(2026, 4, 1))
    draft = _only_invoice(conn, cid)
    put_usage(conn, sid, utc(2026, 3, 2), utc(2026, 3, 3), 1.0, updated_at=utc(2026, 4, 2))
    refresh_period(pool, MARCH, utc(2026, 4, 2))
    fresh = _only_invoice(conn, cid)
    assert fresh.invoice_id == draft.invoice_id
    assert fresh.subtotal - draft.subtotal == D("24.00")  # 96 kWh x 0.25


def test_finalize_waits_for_the_grace_window(conn: Conn, pool: Pool) -> None:
    """Within the grace window finalize is refused and leaves drafts alone; after it, numbers
    them."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    cfg = CloseConfig(grace=timedelta(days=3))
    close_period(pool, MARCH, utc(2026, 4, 1), cfg)
    with pytest.raises(NotReady):
        finalize_period(pool, MARCH, utc(2026, 4, 2), cfg)
    assert _only_invoice(conn, cid).number is None
    finalize_period(pool, MARCH, utc(2026, 4, 5), cfg)
    assert _only_invoice(conn, cid).number == "INV-2026-000001"


def test_finalize_redrafts_stale_drafts_first(conn: Conn, pool: Pool) -> None:
    """Usage written after drafting is on the final invoice."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    close_period(pool, MARCH, utc(2026, 4, 1))
    put_usage(conn, sid, utc(2026, 3, 5), utc(2026, 3, 6), 1.0, updated_at=utc(2026, 4, 3))
    finalize_period(pool, MARCH, utc(2026, 4, 5))
    inv = _only_invoice(conn, cid)
    assert inv.number is not None
    assert inv.subtotal == D("34.00")


def test_late_reading_after_finalize_is_adjusted_on_next_invoice(conn: Conn, pool: Pool) -> None:
    """4 kWh more in March after finalize -> April invoice has +1.00 correcting the March one."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 2), 1.0)
    close_period(pool, MARCH, utc(2026, 4, 5))
    finalize_period(pool, MARCH, utc(2026, 4, 5))
    march = _only_invoice(conn, cid)
    put_usage(
        conn, sid, utc(2026, 3, 1, 12), utc(2026, 3, 1, 12, 15), 5.0, updated_at=utc(2026, 4, 20)
    )
    close_period(pool, PeriodKey(2026, 4), utc(2026, 5, 5))
    april = _only_invoice(conn, cid, "2026-04")
    adj = [ln for ln in april.lines if ln.kind is LineKind.ADJUSTMENT]
    assert len(adj) == 1
    assert adj[0].amount == D("1.00")
    assert adj[0].lineage.corrects_invoice_number == march.number
    assert march.number is not None
    assert march.number in adj[0].description
    assert invoices.get_invoice(conn, march.invoice_id) == march  # untouched


def test_lower_late_reading_is_not_a_line_on_the_next_invoice(conn: Conn, pool: Pool) -> None:
    """A corrected interval 1 kWh lower after finalize is credited by a credit note when the
    next period is finalized (test_credit_notes.py), not by a negative line on its invoice."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 2), 1.0)
    close_period(pool, MARCH, utc(2026, 4, 5))
    finalize_period(pool, MARCH, utc(2026, 4, 5))
    put_usage(
        conn, sid, utc(2026, 3, 1, 12), utc(2026, 3, 1, 12, 15), 0.0, updated_at=utc(2026, 4, 20)
    )
    close_period(pool, PeriodKey(2026, 4), utc(2026, 5, 5))
    april = _only_invoice(conn, cid, "2026-04").lines
    assert not [ln for ln in april if ln.kind in (LineKind.CREDIT, LineKind.ADJUSTMENT)]


def test_correction_is_not_billed_twice(conn: Conn, pool: Pool) -> None:
    """After the adjusted April invoice is final, May carries no second adjustment."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 2), 1.0)
    close_period(pool, MARCH, utc(2026, 4, 5))
    finalize_period(pool, MARCH, utc(2026, 4, 5))
    put_usage(
        conn, sid, utc(2026, 3, 1, 12), utc(2026, 3, 1, 12, 15), 5.0, updated_at=utc(2026, 4, 20)
    )
    close_period(pool, PeriodKey(2026, 4), utc(2026, 5, 5))
    finalize_period(pool, PeriodKey(2026, 4), utc(2026, 5, 5))
    close_period(pool, PeriodKey(2026, 5), utc(2026, 6, 5))
    may = _only_invoice(conn, cid, "2026-05")
    assert not [ln for ln in may.lines if ln.kind in (LineKind.ADJUSTMENT, LineKind.CREDIT)]


def test_late_data_beyond_the_horizon_is_ignored(conn: Conn, pool: Pool) -> None:
    """With a 30-day horizon, late March data seen at the June close corrects nothing."""
    cid, sid, pv = _setup(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 2), 1.0)
    cfg = CloseConfig(correction_horizon=timedelta(days=30))
    close_period(pool, MARCH, utc(2026, 4, 5), cfg)
    finalize_period(pool, MARCH, utc(2026, 4, 5), cfg)
    put_usage(
        conn, sid, utc(2026, 3, 1, 12), utc(2026, 3, 1, 12, 15), 5.0, updated_at=utc(2026, 6, 1)
    )
    close_period(pool, PeriodKey(2026, 6), utc(2026, 7, 5), cfg)
    june = _only_invoice(conn, cid, "2026-06")
    assert not [ln for ln in june.lines if ln.kind is LineKind.ADJUSTMENT]


def test_close_with_a_one_connection_pool_does_not_deadlock(db: str, conn: Conn) -> None:
    """The usage prefetch waits for the pool's only connection instead of blocking the close."""
    for _ in range(3):
        cid, sid, pv = _setup(conn)
        accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    small: Pool = psycopg_pool.ConnectionPool(db, min_size=1, max_size=1, timeout=20, open=True)
    try:
        run = close_period(small, MARCH, NOW, CloseConfig(chunk_size=1))
    finally:
        small.close()
    assert run.status == "done"
    assert run.invoices_written == 3


def _drafts_by_customer(conn: Conn) -> dict[int, tuple[Any, ...]]:
    page = invoices.list_invoices(conn, period="2026-03", limit=1000)
    out: dict[int, tuple[Any, ...]] = {}
    for item in page.items:
        inv = invoices.get_invoice(conn, item.invoice_id)
        out[inv.customer_id] = (
            inv.total,
            tuple((ln.line_no, ln.description, ln.quantity, ln.amount) for ln in inv.lines),
        )
    return out


def test_close_in_rating_processes_drafts_what_threads_draft(conn: Conn, pool: Pool) -> None:
    """Rating chunks in two processes writes the invoices a threaded re-draft writes, every
    chunk stored once and in order (five customers in chunks of two: chunks in flight)."""
    for i, tz in enumerate(["Europe/Amsterdam", "Pacific/Kiritimati"] * 2 + ["Asia/Kolkata"]):
        cid, sid, pv = _setup(conn, tz=tz, price=f"0.2{i}")
        accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
        put_usage(conn, sid, utc(2026, 2, 27), utc(2026, 4, 3), 1.0 + i / 4)
    run = close_period(pool, MARCH, NOW, CloseConfig(chunk_size=2, processes=2))
    assert (run.status, run.done_customers, run.invoices_written) == ("done", 5, 5)
    in_processes = _drafts_by_customer(conn)
    refresh_period(pool, MARCH, NOW, CloseConfig(chunk_size=2, processes=0))
    assert _drafts_by_customer(conn) == in_processes
    amsterdam = in_processes[min(in_processes)]
    assert amsterdam[0] == D("731.32")  # 2972 kWh x 0.20 + 10.00 = 604.40, VAT 126.92


def test_rating_processes_are_bounded() -> None:
    with pytest.raises(ValidationFailed):
        CloseConfig(processes=-1)
    with pytest.raises(ValidationFailed):
        CloseConfig(processes=33)
