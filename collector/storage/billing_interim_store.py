"""Interim invoices of progressive billing (table ``interim_invoices``, migration 0072).

Issued in the caller's transaction: the subscriptions are row-locked before what they were
billed is read, so concurrent checks serialize, and the number comes from the same gapless
sequence rows as final invoices (``billing_invoice_store._allocate``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from collector.billing.interim import InterimDue
from collector.billing.numbering import format_invoice_number
from collector.errors import NotFound
from collector.storage.billing_errors import translated
from collector.storage.billing_invoice_store import _allocate

Conn = psycopg.Connection[Any]

_COLS = (
    "interim_id, customer_id, subscription_id, period, period_start, period_end, threshold,"
    " usage_amount, billed_before, amount, currency, tax_rate, tax, total, number, description,"
    " issued_at"
)
_SEL = sql.SQL(_COLS)


@dataclass(frozen=True, slots=True)
class InterimInvoice:
    """A stored (final, immutable) interim invoice."""

    interim_id: int
    customer_id: int
    subscription_id: int
    period: str
    period_start: datetime
    period_end: datetime
    threshold: Decimal
    usage_amount: Decimal
    billed_before: Decimal
    amount: Decimal
    currency: str
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    number: str
    description: str
    issued_at: datetime


def _row(r: Sequence[Any]) -> InterimInvoice:
    return InterimInvoice(
        interim_id=int(r[0]),
        customer_id=int(r[1]),
        subscription_id=int(r[2]),
        period=r[3],
        period_start=r[4],
        period_end=r[5],
        threshold=r[6],
        usage_amount=r[7],
        billed_before=r[8],
        amount=r[9],
        currency=r[10].strip(),
        tax_rate=r[11],
        tax=r[12],
        total=r[13],
        number=r[14],
        description=r[15],
        issued_at=r[16],
    )


def billed_in_advance(
    conn: Conn, periods: Sequence[str], subscription_ids: Sequence[int], *, lock: bool = False
) -> dict[tuple[int, str], Decimal]:
    """What interim invoices billed per (subscription, period) among ``periods`` (absent:
    nothing). ``lock``: row-lock the subscriptions first (an interim check that may issue)."""
    ids = sorted(set(subscription_ids))
    if not ids or not periods:
        return {}
    with translated("read interim invoices"):
        if lock:
            conn.execute(
                "SELECT subscription_id FROM subscriptions WHERE subscription_id = ANY(%s)"
                " ORDER BY subscription_id FOR UPDATE",
                (ids,),
            )
        rows = conn.execute(
            "SELECT subscription_id, period, sum(amount) FROM interim_invoices"
            " WHERE period = ANY(%s) AND subscription_id = ANY(%s)"
            " GROUP BY subscription_id, period",
            (sorted(set(periods)), ids),
        ).fetchall()
    return {(int(s), str(p)): Decimal(a) for s, p, a in rows}


def issue(conn: Conn, due: InterimDue, now: datetime, time_zone: str) -> InterimInvoice:
    """Number and store one interim invoice in the caller's transaction."""
    year = now.astimezone(ZoneInfo(time_zone)).year
    with translated("issue interim invoice"):
        value = _allocate(conn, due.issuer, due.prefix, year, 1)
        number = format_invoice_number(due.prefix, year, value)
        row = conn.execute(
            sql.SQL(
                "INSERT INTO interim_invoices (customer_id, subscription_id, period,"
                " period_start, period_end, threshold, usage_amount, billed_before, amount,"
                " currency, tax_rate, tax, total, issuer, prefix, number, description,"
                " issued_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " RETURNING {}"
            ).format(_SEL),
            (
                due.customer_id,
                due.subscription_id,
                due.period,
                due.period_start,
                due.period_end,
                due.threshold,
                due.usage_amount,
                due.billed_before,
                due.amount,
                due.currency,
                due.tax_rate,
                due.tax,
                due.total,
                due.issuer,
                due.prefix,
                number,
                due.description,
                now,
            ),
        ).fetchone()
    assert row is not None
    return _row(row)


def list_interim(
    conn: Conn, *, customer_id: int | None = None, period: str | None = None
) -> list[InterimInvoice]:
    """Interim invoices, oldest first, optionally of one customer and/or period."""
    with translated("list interim invoices"):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM interim_invoices"
                " WHERE (%(c)s::bigint IS NULL OR customer_id = %(c)s)"
                " AND (%(p)s::text IS NULL OR period = %(p)s) ORDER BY interim_id LIMIT 10000"
            ).format(_SEL),
            {"c": customer_id, "p": period},
        ).fetchall()
    return [_row(r) for r in rows]


def get_interim(conn: Conn, interim_id: int) -> InterimInvoice:
    with translated("read interim invoice"):
        row = conn.execute(
            sql.SQL("SELECT {} FROM interim_invoices WHERE interim_id = %s").format(_SEL),
            (interim_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"interim invoice {interim_id} not found")
    return _row(row)
