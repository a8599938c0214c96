"""Invoices in PostgreSQL: drafts (replaced wholesale on refresh), finalization with gapless
numbers, reads, and the sums the correction logic diffs against.

Finalized invoices and their lines are immutable; the database enforces it with triggers
(0020_billing.sql), whose SQLSTATE ``TL001`` is translated to ``Conflict`` here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from collector.billing.model import (
    DraftInvoice,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Lineage,
    LineKind,
)
from collector.billing.numbering import format_invoice_number
from collector.errors import Conflict, NotFound, ValidationFailed
from collector.storage.billing_chunk_sql import CHUNK_DRAFTS, CHUNK_FINALS
from collector.storage.billing_errors import translated
from collector.storage.billing_peak_store import delete_draft_peaks, write_peaks
from collector.storage.billing_store import Page, _check_limit, _cursor_id

Conn = psycopg.Connection[Any]


_INV_COLS = (
    "invoice_id, customer_id, period, period_start, period_end, status, currency, tax_rate,"
    " subtotal, tax, total, number, issuer, drafted_at, finalized_at, forced_reason"
)
_LINE_COLS = (
    "line_id, line_no, kind, description, quantity, unit, unit_price, amount_unrounded, amount,"
    " lineage, tier, tou_period, estimated_share"
)


def _invoice(row: Sequence[Any], lines: tuple[InvoiceLine, ...] = ()) -> Invoice:
    return Invoice(
        invoice_id=int(row[0]),
        customer_id=int(row[1]),
        period=row[2],
        period_start=row[3],
        period_end=row[4],
        status=InvoiceStatus(row[5]),
        currency=row[6].strip(),
        tax_rate=row[7],
        subtotal=row[8],
        tax=row[9],
        total=row[10],
        number=row[11],
        issuer=row[12],
        drafted_at=row[13],
        finalized_at=row[14],
        lines=lines,
        forced_reason=row[15],
    )


def _line(row: Sequence[Any]) -> InvoiceLine:
    return InvoiceLine(
        line_id=int(row[0]),
        line_no=int(row[1]),
        kind=LineKind(row[2]),
        description=row[3],
        quantity=row[4],
        unit=row[5],
        unit_price=row[6],
        amount_unrounded=row[7],
        amount=row[8],
        lineage=Lineage.from_json(row[9]),
        tier=row[10],
        tou_period=row[11],
        estimated_share=row[12],
    )


def store_drafts(
    conn: Conn,
    period: str,
    drafts: Sequence[DraftInvoice],
    replace_customers: Sequence[int],
    *,
    run_id: int | None,
    now: datetime,
) -> int:
    """Replace the draft invoices of ``replace_customers`` for ``period`` with ``drafts``.

    Set-based: one DELETE of old draft lines, one upsert of invoices, one COPY of lines (and one of
    demand peaks). Final
    invoices are never touched (customers with one are skipped by the caller, and the upsert's
    ``WHERE status = 'draft'`` would not update them anyway). Returns the number of lines written.
    """
    delete_draft_peaks(conn, period, replace_customers)
    with translated("store drafts"):
        conn.execute(
            sql.SQL(
                "DELETE FROM invoice_lines WHERE invoice_id IN (SELECT i.invoice_id FROM {})"
            ).format(CHUNK_DRAFTS),
            (sorted(replace_customers), period),
        )
        keep = {d.customer_id for d in drafts}
        gone = [c for c in replace_customers if c not in keep]
        if gone:
            conn.execute(
                sql.SQL(
                    "DELETE FROM invoices WHERE invoice_id IN (SELECT i.invoice_id FROM {})"
                ).format(CHUNK_DRAFTS),
                (sorted(gone), period),
            )
        if not drafts:
            return 0
        ids = _upsert_drafts(conn, period, drafts, run_id=run_id, now=now)
        written = 0
        lineage_json: dict[Lineage, str] = {}  # a segment's lines share one lineage: dump once
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY invoice_lines (invoice_id, line_no, kind, description, quantity, unit,"
                " unit_price, amount_unrounded, amount, tier, tou_period, estimated_share,"
                " subscription_id, corrects_invoice_id, lineage) FROM STDIN"
            ) as copy,
        ):
            for d in drafts:
                invoice_id = ids.get(d.customer_id)
                if invoice_id is None:  # final already: nothing to replace
                    continue
                for ln in d.lines:
                    lin = ln.lineage
                    text = lineage_json.get(lin)
                    if text is None:
                        text = lineage_json[lin] = json.dumps(lin.to_json())
                    copy.write_row(
                        (
                            invoice_id,
                            ln.line_no,
                            ln.kind.value,
                            ln.description,
                            ln.quantity,
                            ln.unit,
                            ln.unit_price,
                            ln.amount_unrounded,
                            ln.amount,
                            ln.tier,
                            ln.tou_period,
                            ln.estimated_share,
                            lin.subscription_ids[0] if len(lin.subscription_ids) == 1 else None,
                            lin.corrects_invoice_id,
                            text,
                        )
                    )
                    written += 1
    write_peaks(conn, period, drafts, ids)
    return written


_STAGE_COLS = (
    "customer_id, period, period_start, period_end, currency, tax_rate, subtotal,"
    " subtotal_unrounded, tax, total, issuer, prefix, customer_snapshot, drafted_at, run_id"
)


def _upsert_drafts(
    conn: Conn,
    period: str,
    drafts: Sequence[DraftInvoice],
    *,
    run_id: int | None,
    now: datetime,
) -> dict[int, int]:
    """Upsert the drafts' invoice rows with one COPY into a staging table and one
    ``INSERT … SELECT … ON CONFLICT``; returns customer id -> invoice id of every draft written
    (a customer whose invoice is final is left out: the upsert does not touch it)."""
    if conn.info.transaction_status is TransactionStatus.IDLE:
        # outside a transaction each statement would commit and empty the staging table
        with conn.transaction():
            return _upsert_drafts(conn, period, drafts, run_id=run_id, now=now)
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS invoice_draft_stage (customer_id bigint, period text,"
        " period_start timestamptz, period_end timestamptz, currency text, tax_rate numeric,"
        " subtotal numeric, subtotal_unrounded numeric, tax numeric, total numeric,"
        " issuer text, prefix text, customer_snapshot jsonb, drafted_at timestamptz,"
        " run_id bigint) ON COMMIT DELETE ROWS"
    )
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY invoice_draft_stage ({_STAGE_COLS}) FROM STDIN") as copy,
    ):
        for d in drafts:
            copy.write_row(
                (
                    d.customer_id,
                    period,
                    d.period_start,
                    d.period_end,
                    d.currency,
                    d.tax_rate,
                    d.subtotal,
                    d.subtotal_unrounded,
                    d.tax,
                    d.total,
                    d.issuer,
                    d.prefix,
                    json.dumps(d.customer_snapshot),
                    now,
                    run_id,
                )
            )
    rows = conn.execute(
        "INSERT INTO invoices (customer_id, period, period_start, period_end, status,"
        " currency, tax_rate, subtotal, subtotal_unrounded, tax, total, issuer, prefix,"
        " customer_snapshot, drafted_at, run_id, issuer_snapshot)"
        " SELECT s.customer_id, s.period, s.period_start, s.period_end, 'draft', s.currency,"
        " s.tax_rate, s.subtotal, s.subtotal_unrounded, s.tax, s.total, s.issuer, s.prefix,"
        " s.customer_snapshot, s.drafted_at, s.run_id,"
        " (SELECT document FROM issuers WHERE code = s.issuer)"
        " FROM invoice_draft_stage s ORDER BY s.customer_id"
        " ON CONFLICT (customer_id, period) DO UPDATE SET"
        " period_start=EXCLUDED.period_start,"
        " period_end=EXCLUDED.period_end, currency=EXCLUDED.currency,"
        " tax_rate=EXCLUDED.tax_rate, subtotal=EXCLUDED.subtotal,"
        " subtotal_unrounded=EXCLUDED.subtotal_unrounded, tax=EXCLUDED.tax,"
        " total=EXCLUDED.total, issuer=EXCLUDED.issuer, prefix=EXCLUDED.prefix,"
        " customer_snapshot=EXCLUDED.customer_snapshot, drafted_at=EXCLUDED.drafted_at,"
        " run_id=EXCLUDED.run_id, issuer_snapshot=EXCLUDED.issuer_snapshot"
        " WHERE invoices.status = 'draft'"
        " RETURNING customer_id, invoice_id"
    ).fetchall()
    conn.execute("TRUNCATE invoice_draft_stage")  # a second call in this transaction
    return {int(c): int(i) for c, i in rows}


def final_customer_ids(conn: Conn, period: str, customer_ids: Sequence[int]) -> set[int]:
    with translated("load final invoices"):
        rows = conn.execute(
            sql.SQL("SELECT i.customer_id FROM {}").format(CHUNK_FINALS),
            (sorted(customer_ids), period),
        ).fetchall()
    return {int(r[0]) for r in rows}


def _allocate(conn: Conn, issuer: str, prefix: str, year: int, count: int) -> int:
    """Reserve ``count`` consecutive numbers; returns the first. Row-locked until commit."""
    row = conn.execute(
        "INSERT INTO invoice_number_sequences AS s (issuer, prefix, year, last_value)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (issuer, prefix, year)"
        " DO UPDATE SET last_value = s.last_value + EXCLUDED.last_value RETURNING last_value",
        (issuer, prefix, year, count),
    ).fetchone()
    assert row is not None
    return int(row[0]) - count + 1


def finalize_drafts(
    conn: Conn,
    now: datetime,
    *,
    invoice_ids: Sequence[int] | None = None,
    period: str | None = None,
    customer_ids: Sequence[int] | None = None,
    period_end_before: datetime | None = None,
    forced_reason: str | None = None,
) -> list[tuple[int, str]]:
    """Finalize drafts (by id, or a period's drafts for some customers) in the caller's
    transaction; returns ``(invoice_id, number)`` pairs.

    Without ``forced_reason`` only drafts whose period ended by ``period_end_before`` are taken
    (the finalize guard's window; None takes all). With it every selected draft is taken and
    those that end after ``period_end_before`` keep the reason in ``forced_reason``.

    Drafts are row-locked in customer order, then numbers are taken from the sequence row of
    each (issuer, prefix, year) under its row lock: concurrent finalizers serialize on it, and
    a rollback returns the numbers, so numbering stays gapless. The year is the issue date's
    year in the customer's time zone.
    """
    if invoice_ids is None and (period is None or customer_ids is None):
        raise ValidationFailed("finalize needs invoice ids or a period and customers")
    with translated("finalize invoices"):
        end = None if forced_reason else period_end_before
        if invoice_ids:
            rows = conn.execute(
                "SELECT invoice_id, issuer, prefix, customer_snapshot->>'time_zone' FROM invoices"
                " WHERE invoice_id = ANY(%s::bigint[]) AND status = 'draft'"
                " AND (%s::timestamptz IS NULL OR period_end <= %s::timestamptz)"
                " ORDER BY customer_id, invoice_id FOR UPDATE",
                (list(invoice_ids), end, end),
            ).fetchall()
        else:
            # one probe per customer (see CHUNK_DRAFTS), locked in customer order
            rows = conn.execute(
                "SELECT i.invoice_id, i.issuer, i.prefix, i.customer_snapshot->>'time_zone'"
                " FROM unnest(%s::bigint[]) AS c (customer_id) CROSS JOIN LATERAL"
                " (SELECT * FROM invoices WHERE customer_id = c.customer_id AND period = %s"
                " AND status = 'draft'"
                " AND (%s::timestamptz IS NULL OR period_end <= %s::timestamptz)"
                " LIMIT 1 FOR UPDATE) i ORDER BY i.customer_id, i.invoice_id",
                (sorted(customer_ids or []), period, end, end),
            ).fetchall()
        groups: dict[tuple[str, str, int], list[int]] = defaultdict(list)
        for invoice_id, issuer, prefix, tz in rows:
            groups[(issuer, prefix, now.astimezone(ZoneInfo(tz)).year)].append(int(invoice_id))
        assigned: list[tuple[int, str]] = []
        for (issuer, prefix, year), ids in sorted(groups.items()):
            first = _allocate(conn, issuer, prefix, year, len(ids))
            assigned += [
                (iid, format_invoice_number(prefix, year, first + k)) for k, iid in enumerate(ids)
            ]
        if assigned:
            conn.execute(
                "UPDATE invoices SET status = 'final', number = a.number, finalized_at = %s,"
                " issuer_snapshot = coalesce((SELECT document FROM issuers"
                " WHERE code = invoices.issuer), issuer_snapshot),"
                " forced_reason = CASE WHEN %s::text IS NOT NULL AND"
                " (%s::timestamptz IS NULL OR period_end > %s::timestamptz)"
                " THEN %s::text END"
                " FROM unnest(%s::bigint[], %s::text[]) AS a (invoice_id, number)"
                # the ANY lets the planner reach the rows by primary key instead of hashing
                # the unnest against a scan of every invoice
                " WHERE invoices.invoice_id = a.invoice_id AND invoices.invoice_id = ANY(%s)",
                (
                    now,
                    forced_reason,
                    period_end_before,
                    period_end_before,
                    forced_reason,
                    [iid for iid, _ in assigned],
                    [number for _, number in assigned],
                    [iid for iid, _ in assigned],
                ),
            )
    return assigned


def finalize_invoice(
    conn: Conn,
    invoice_id: int,
    now: datetime,
    *,
    period_end_before: datetime | None = None,
    forced_reason: str | None = None,
) -> Invoice:
    """Finalize one draft; Conflict if it is final already (or its period ends after
    ``period_end_before`` and it is not forced), NotFound if it does not exist. The caller
    checks the finalize guard first (``collector.billing.finalizing``); the window is applied
    again here, under the row lock."""
    current = get_invoice(conn, invoice_id, with_lines=False)
    if current.status is InvoiceStatus.FINAL:
        raise Conflict(f"invoice {invoice_id} is already final as {current.number}")
    if not finalize_drafts(
        conn,
        now,
        invoice_ids=[invoice_id],
        period_end_before=period_end_before,
        forced_reason=forced_reason,
    ):
        raise Conflict(f"invoice {invoice_id} was finalized concurrently or is not ready")
    return get_invoice(conn, invoice_id)


def unready_drafts(conn: Conn, period: str, period_end_before: datetime) -> tuple[int, datetime]:
    """How many drafts of ``period`` end after ``period_end_before``, and the latest end."""
    with translated("count unready drafts"):
        row = conn.execute(
            "SELECT count(*), max(period_end) FROM invoices WHERE period = %s"
            " AND status = 'draft' AND period_end > %s",
            (period, period_end_before),
        ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def get_invoice(conn: Conn, invoice_id: int, *, with_lines: bool = True) -> Invoice:
    with translated("get invoice"):
        row = conn.execute(
            sql.SQL("SELECT {} FROM invoices WHERE invoice_id = %s").format(sql.SQL(_INV_COLS)),
            (invoice_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"invoice {invoice_id} does not exist")
        lines: tuple[InvoiceLine, ...] = ()
        if with_lines:
            lines = tuple(
                _line(r)
                for r in conn.execute(
                    sql.SQL(
                        "SELECT {} FROM invoice_lines WHERE invoice_id = %s ORDER BY line_no"
                    ).format(sql.SQL(_LINE_COLS)),
                    (invoice_id,),
                ).fetchall()
            )
    return _invoice(row, lines)


def customer_snapshot(conn: Conn, invoice_id: int) -> dict[str, Any]:
    with translated("get invoice customer"):
        row = conn.execute(
            "SELECT customer_snapshot FROM invoices WHERE invoice_id = %s", (invoice_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    return dict(row[0])


def get_line(conn: Conn, invoice_id: int, line_id: int) -> InvoiceLine:
    with translated("get invoice line"):
        row = conn.execute(
            sql.SQL("SELECT {} FROM invoice_lines WHERE invoice_id = %s AND line_id = %s").format(
                sql.SQL(_LINE_COLS)
            ),
            (invoice_id, line_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"line {line_id} of invoice {invoice_id} does not exist")
    return _line(row)


def list_invoices(
    conn: Conn,
    *,
    limit: int = 100,
    cursor: str | None = None,
    customer_id: int | None = None,
    period: str | None = None,
    status: InvoiceStatus | None = None,
) -> Page[Invoice]:
    _check_limit(limit)
    st = status.value if status else None
    with translated("list invoices"):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM invoices WHERE invoice_id > %s AND (%s::bigint IS NULL OR"
                " customer_id"
                " = %s::bigint) AND (%s::text IS NULL OR period = %s::text) AND (%s::text IS"
                " NULL OR "
                "status = %s::text) ORDER BY invoice_id LIMIT %s"
            ).format(sql.SQL(_INV_COLS)),
            (_cursor_id(cursor), customer_id, customer_id, period, period, st, st, limit + 1),
        ).fetchall()
    items = tuple(_invoice(r) for r in rows[:limit])
    return Page(items, str(items[-1].invoice_id) if len(rows) > limit else None)


def draft_invoice_ids(conn: Conn, period: str, customer_ids: Sequence[int]) -> list[int]:
    with translated("list drafts"):
        rows = conn.execute(
            sql.SQL("SELECT i.invoice_id FROM {} ORDER BY i.customer_id").format(CHUNK_DRAFTS),
            (sorted(customer_ids), period),
        ).fetchall()
    return [int(r[0]) for r in rows]


def status_counts(conn: Conn, period: str) -> dict[str, int]:
    with translated("count invoices"):
        rows = conn.execute(
            "SELECT status, count(*) FROM invoices WHERE period = %s GROUP BY status", (period,)
        ).fetchall()
    return {"draft": 0, "final": 0} | {r[0]: int(r[1]) for r in rows}
