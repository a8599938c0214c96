"""Progress of billing runs (close / refresh / finalize) and idempotency keys of API POSTs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from collector.errors import NotFound
from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]

_RUN_COLS = (
    "run_id, period, kind, status, total_customers, done_customers, last_customer_id,"
    " invoices_written, lines_written, started_at, updated_at, finished_at"
)


@dataclass(frozen=True, slots=True)
class BillingRun:
    run_id: int
    period: str
    kind: str
    status: str
    total_customers: int
    done_customers: int
    last_customer_id: int
    invoices_written: int
    lines_written: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def progress(self) -> float:
        if self.total_customers == 0:
            return 1.0 if self.status == "done" else 0.0
        return self.done_customers / self.total_customers


def _run(row: Sequence[Any]) -> BillingRun:
    return BillingRun(*row)


def start_or_resume_run(
    conn: Conn, period: str, kind: str, total: int, now: datetime
) -> BillingRun:
    """The running run of this period and kind (a killed run resumes), else a new one."""
    with translated("start billing run"):
        row = conn.execute(
            sql.SQL(
                "INSERT INTO billing_runs (period, kind, status, total_customers, started_at, "
                "updated_at) VALUES (%s, %s, 'running', %s, %s, %s) ON CONFLICT (period, kind)"
                " WHERE "
                "status = 'running' DO UPDATE SET total_customers = EXCLUDED.total_customers "
                "RETURNING {}"
            ).format(sql.SQL(_RUN_COLS)),
            (period, kind, total, now, now),
        ).fetchone()
    assert row is not None
    return _run(row)


def advance_run(
    conn: Conn,
    run_id: int,
    *,
    last_customer_id: int,
    customers: int,
    invoices: int,
    lines: int,
    now: datetime,
) -> None:
    """Record a committed chunk (call inside the chunk's transaction)."""
    with translated("advance billing run"):
        conn.execute(
            "UPDATE billing_runs SET last_customer_id = %s, done_customers = done_customers + %s,"
            " invoices_written = invoices_written + %s, lines_written = lines_written + %s,"
            " updated_at = %s WHERE run_id = %s",
            (last_customer_id, customers, invoices, lines, now, run_id),
        )


def finish_run(conn: Conn, run_id: int, now: datetime) -> BillingRun:
    with translated("finish billing run"):
        row = conn.execute(
            sql.SQL(
                "UPDATE billing_runs SET status = 'done', finished_at = %s, updated_at = %s WHERE "
                "run_id = %s RETURNING {}"
            ).format(sql.SQL(_RUN_COLS)),
            (now, now, run_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"billing run {run_id} does not exist")
    return _run(row)


def get_run(conn: Conn, run_id: int) -> BillingRun:
    with translated("get billing run"):
        row = conn.execute(
            sql.SQL("SELECT {} FROM billing_runs WHERE run_id = %s").format(sql.SQL(_RUN_COLS)),
            (run_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"billing run {run_id} does not exist")
    return _run(row)


def list_runs(conn: Conn, period: str | None = None, limit: int = 50) -> list[BillingRun]:
    with translated("list billing runs"):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM billing_runs WHERE (%s::text IS NULL OR period = %s::text) ORDER"
                " BY "
                "run_id DESC LIMIT %s"
            ).format(sql.SQL(_RUN_COLS)),
            (period, period, limit),
        ).fetchall()
    return [_run(r) for r in rows]


# -- idempotency keys --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: Any


def claim_idempotency_key(
    conn: Conn, scope: str, key: str, request_hash: str
) -> StoredResponse | None:
    """Claim ``key`` in the caller's transaction; the stored response if it was used before.

    The claim inserts a placeholder row: a concurrent request with the same key blocks on the
    primary key until this transaction ends, then sees the stored response.
    """
    with translated("claim idempotency key"):
        row = conn.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response)"
            " VALUES (%s, %s, %s, 0, 'null') ON CONFLICT (scope, key) DO NOTHING RETURNING 1",
            (scope, key, request_hash),
        ).fetchone()
        if row is not None:
            return None
        old = conn.execute(
            "SELECT request_hash, status_code, response FROM idempotency_keys"
            " WHERE scope = %s AND key = %s",
            (scope, key),
        ).fetchone()
    assert old is not None
    return StoredResponse(old[0], int(old[1]), old[2])


def save_idempotent_response(conn: Conn, scope: str, key: str, status_code: int, body: Any) -> None:
    with translated("save idempotent response"):
        conn.execute(
            "UPDATE idempotency_keys SET status_code = %s, response = %s"
            " WHERE scope = %s AND key = %s",
            (status_code, Jsonb(body), scope, key),
        )


def lock_run(conn: Conn, run_id: int) -> BillingRun:
    """The run, row-locked until the caller's transaction ends (one chunk at a time per run)."""
    with translated("lock billing run"):
        row = conn.execute(
            sql.SQL("SELECT {} FROM billing_runs WHERE run_id = %s FOR UPDATE").format(
                sql.SQL(_RUN_COLS)
            ),
            (run_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"billing run {run_id} does not exist")
    return _run(row)


def completed_run(conn: Conn, period: str, kind: str) -> BillingRun | None:
    with translated("find completed run"):
        row = conn.execute(
            sql.SQL(
                "SELECT {} FROM billing_runs WHERE period = %s AND kind = %s AND status = 'done' "
                "ORDER BY run_id LIMIT 1"
            ).format(sql.SQL(_RUN_COLS)),
            (period, kind),
        ).fetchone()
    return None if row is None else _run(row)
