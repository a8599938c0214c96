"""SIGKILL in the middle of a close or a finalize, then a re-run: one invoice per customer and
gapless, duplicate-free numbering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool

from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc

ROOT = Path(__file__).resolve().parents[3]
CUSTOMERS = 30
NOW = "2026-04-10T00:00:00+00:00"


def _populate(conn: psycopg.Connection[Any]) -> None:
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    for i in range(CUSTOMERS):
        c = accounts.create_customer(conn, spec(f"C{i}"))
        sid = make_series(conn, f"d{i}")
        accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
        put_usage(conn, sid, utc(2026, 3, 3), utc(2026, 3, 4), 0.5 + i)


def _run_and_kill(db: str, action: str, after_lines: int) -> None:
    """Run the billing CLI in a subprocess and SIGKILL it after some progress lines."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "collector.billing.cli",
            "--database-url",
            db,
            action,
            "2026-03",
            "--chunk-size",
            "1",
            "--plain",
            "--now",
            NOW,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    for _ in range(after_lines):
        assert proc.stdout.readline().startswith("run ")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_killed_close_resumes_to_exactly_one_invoice_per_customer(
    db: str, conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """A close killed after a few chunks resumes its run and drafts each customer once."""
    _populate(conn)
    _run_and_kill(db, "close", 3)
    assert _count(conn, "SELECT count(*) FROM billing_runs WHERE status = 'running'") == 1
    partial = _count(conn, "SELECT count(*) FROM invoices")
    assert 3 <= partial < CUSTOMERS
    run = close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    assert run.status == "done"
    assert run.done_customers == CUSTOMERS
    assert _count(conn, "SELECT count(*) FROM billing_runs") == 1
    assert _count(conn, "SELECT count(DISTINCT customer_id) FROM invoices") == CUSTOMERS
    assert _count(conn, "SELECT count(*) FROM invoices") == CUSTOMERS
    assert _count(conn, "SELECT count(*) FROM invoice_lines") == 2 * CUSTOMERS


def test_killed_finalize_leaves_gapless_numbers_after_rerun(
    db: str, conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """A finalize killed midway, then re-run, numbers 1..N once each with no gap."""
    _populate(conn)
    close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    _run_and_kill(db, "finalize", 3)
    finals = _count(conn, "SELECT count(*) FROM invoices WHERE status = 'final'")
    assert 3 <= finals < CUSTOMERS
    finalize_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    numbers = [
        r[0] for r in conn.execute("SELECT number FROM invoices ORDER BY customer_id").fetchall()
    ]
    assert numbers == [f"INV-2026-{i:06d}" for i in range(1, CUSTOMERS + 1)]
    assert _count(conn, "SELECT last_value FROM invoice_number_sequences") == CUSTOMERS
