"""Advance invoices of pay-in-advance fees (table ``advance_invoices``, migration 0074):
numbered from the same gapless sequence rows as final invoices, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from collector.billing.advance import AdvanceDue
from collector.billing.numbering import format_invoice_number
from collector.storage.billing_errors import translated
from collector.storage.billing_invoice_store import _allocate

Conn = psycopg.Connection[Any]

_SEL = sql.SQL(
    "advance_id, customer_id, period, period_start, period_end, currency, tax_rate, subtotal,"
    " tax, total, number, lines, issued_at"
)


@dataclass(frozen=True, slots=True)
class AdvanceInvoice:
    advance_id: int
    customer_id: int
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    tax_rate: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    number: str
    lines: tuple[dict[str, Any], ...]
    issued_at: datetime


def _row(r: Sequence[Any]) -> AdvanceInvoice:
    return AdvanceInvoice(
        int(r[0]),
        int(r[1]),
        r[2],
        r[3],
        r[4],
        r[5].strip(),
        r[6],
        r[7],
        r[8],
        r[9],
        r[10],
        tuple(r[11]),
        r[12],
    )


def issued_customers(conn: Conn, period: str, customer_ids: Sequence[int]) -> set[int]:
    """Customers of ``customer_ids`` whose advance invoice for ``period`` exists; locks their
    customer rows first so concurrent runs serialize."""
    if not customer_ids:
        return set()
    with translated("read advance invoices"):
        conn.execute(
            "SELECT customer_id FROM customers WHERE customer_id = ANY(%s)"
            " ORDER BY customer_id FOR UPDATE",
            (list(customer_ids),),
        )
        rows = conn.execute(
            "SELECT customer_id FROM advance_invoices WHERE period = %s AND customer_id = ANY(%s)",
            (period, list(customer_ids)),
        ).fetchall()
    return {int(r[0]) for r in rows}


def issue(conn: Conn, due: AdvanceDue, now: datetime, time_zone: str) -> AdvanceInvoice:
    year = now.astimezone(ZoneInfo(time_zone)).year
    lines = [
        {
            "subscription_id": ln.subscription_id,
            "charge_id": ln.charge_id,
            "description": ln.description,
            "amount": str(ln.amount),
        }
        for ln in due.lines
    ]
    with translated("issue advance invoice"):
        number = format_invoice_number(
            due.prefix, year, _allocate(conn, due.issuer, due.prefix, year, 1)
        )
        row = conn.execute(
            sql.SQL(
                "INSERT INTO advance_invoices (customer_id, period, period_start, period_end,"
                " currency, tax_rate, subtotal, tax, total, issuer, prefix, number, lines,"
                " issued_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING {}"
            ).format(_SEL),
            (
                due.customer_id,
                due.period,
                due.period_start,
                due.period_end,
                due.currency,
                due.tax_rate,
                due.subtotal,
                due.tax,
                due.total,
                due.issuer,
                due.prefix,
                number,
                Jsonb(lines),
                now,
            ),
        ).fetchone()
    assert row is not None
    return _row(row)


def list_advance(
    conn: Conn, *, customer_id: int | None = None, period: str | None = None
) -> list[AdvanceInvoice]:
    with translated("list advance invoices"):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM advance_invoices"
                " WHERE (%(c)s::bigint IS NULL OR customer_id = %(c)s)"
                " AND (%(p)s::text IS NULL OR period = %(p)s) ORDER BY advance_id LIMIT 10000"
            ).format(_SEL),
            {"c": customer_id, "p": period},
        ).fetchall()
    return [_row(r) for r in rows]
