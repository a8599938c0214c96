"""Finalization: gapless numbering under concurrency, and immutability in the database."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import psycopg_pool
import pytest

from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from collector.errors import Conflict
from collector.storage import billing_invoice_store as invoices
from tests.collector.billing.conftest import make_series, plan_doc, spec, utc

MARCH = PeriodKey(2026, 3)
NOW = utc(2026, 4, 10)
Pool = psycopg_pool.ConnectionPool[Any]
Conn = psycopg.Connection[Any]


def _drafts(conn: Conn, pool: Pool, n: int) -> list[int]:
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    for i in range(n):
        c = accounts.create_customer(conn, spec(f"C{i}"))
        accounts.assign_meter(
            conn, c.customer_id, make_series(conn, f"d{i}"), v.plan_version_id, utc(2026, 1, 1)
        )
    close_period(pool, MARCH, NOW)
    return [inv.invoice_id for inv in invoices.list_invoices(conn, period="2026-03").items]


def test_period_finalize_numbers_in_customer_order(conn: Conn, pool: Pool) -> None:
    """Three drafts become INV-2026-000001..3 in customer order."""
    ids = _drafts(conn, pool, 3)
    finalize_period(pool, MARCH, NOW)
    numbers = [invoices.get_invoice(conn, i).number for i in ids]
    assert numbers == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]


def test_concurrent_finalizers_share_one_gapless_sequence(db: str, conn: Conn, pool: Pool) -> None:
    """Two finalizers at once, one holding its transaction open, get numbers 1 and 2."""
    a, b = _drafts(conn, pool, 2)
    got: dict[int, str] = {}
    first_has_number = threading.Event()

    def slow() -> None:
        with psycopg.connect(db) as c, c.transaction():
            got[a] = invoices.finalize_invoice(c, a, NOW).number or ""
            first_has_number.set()
            time.sleep(0.5)  # the sequence row stays locked meanwhile

    def fast() -> None:
        first_has_number.wait(5)
        with psycopg.connect(db) as c, c.transaction():
            got[b] = invoices.finalize_invoice(c, b, NOW).number or ""

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == {a: "INV-2026-000001", b: "INV-2026-000002"}


def test_rolled_back_finalize_leaves_no_gap(db: str, conn: Conn, pool: Pool) -> None:
    """A finalize that rolls back gives its number back to the next one."""
    a, b = _drafts(conn, pool, 2)
    with psycopg.connect(db) as c:
        with c.transaction(force_rollback=True):
            assert invoices.finalize_invoice(c, a, NOW).number == "INV-2026-000001"
        with c.transaction():
            assert invoices.finalize_invoice(c, b, NOW).number == "INV-2026-000001"


def test_same_invoice_finalized_twice_concurrently_gets_one_number(
    db: str, conn: Conn, pool: Pool
) -> None:
    """Of two finalizers racing on one invoice, one wins and the other gets Conflict."""
    (a,) = _drafts(conn, pool, 1)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            with psycopg.connect(db) as c, c.transaction():
                results.append(invoices.finalize_invoice(c, a, NOW).number or "")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["INV-2026-000001", "conflict"]
    seq = conn.execute("SELECT last_value FROM invoice_number_sequences").fetchone()
    assert seq is not None
    assert seq[0] == 1


def test_update_of_a_final_invoice_is_rejected_by_the_database(conn: Conn, pool: Pool) -> None:
    """Raw SQL cannot change a final invoice's total (trigger, SQLSTATE TL001)."""
    (a,) = _drafts(conn, pool, 1)
    finalize_period(pool, MARCH, NOW)
    with pytest.raises(psycopg.Error) as info:
        conn.execute("UPDATE invoices SET total = 0 WHERE invoice_id = %s", (a,))
    assert info.value.sqlstate == "TL001"


def test_lines_of_a_final_invoice_cannot_be_deleted(conn: Conn, pool: Pool) -> None:
    """Raw SQL cannot delete or add lines of a final invoice."""
    (a,) = _drafts(conn, pool, 1)
    finalize_period(pool, MARCH, NOW)
    with pytest.raises(psycopg.Error) as info:
        conn.execute("DELETE FROM invoice_lines WHERE invoice_id = %s", (a,))
    assert info.value.sqlstate == "TL001"
    with pytest.raises(psycopg.Error):
        conn.execute("DELETE FROM invoices WHERE invoice_id = %s", (a,))


def test_draft_invoices_can_still_be_changed(conn: Conn, pool: Pool) -> None:
    """The trigger only protects final invoices."""
    (a,) = _drafts(conn, pool, 1)
    conn.execute("UPDATE invoices SET tax = tax WHERE invoice_id = %s", (a,))
    conn.execute("DELETE FROM invoice_lines WHERE invoice_id = %s", (a,))


def test_finalizing_a_final_invoice_is_a_conflict(conn: Conn, pool: Pool) -> None:
    """Finalizing twice does not consume a second number."""
    (a,) = _drafts(conn, pool, 1)
    invoices.finalize_invoice(conn, a, NOW)
    with pytest.raises(Conflict):
        invoices.finalize_invoice(conn, a, NOW)
