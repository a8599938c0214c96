"""SQL of the staff reports: revenue, top consumers, unbilled and estimated usage, device
health, and the final invoices a reconciliation re-rates. Every function returns a
``collector.reports.Table``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from collector.errors import ValidationFailed
from collector.reports.table import Table
from collector.storage.database import translate_errors

__all__ = [
    "GROUPINGS",
    "device_health",
    "estimated_usage",
    "final_invoices",
    "revenue",
    "top_consumers",
    "unbilled_usage",
]

Conn = psycopg.Connection[Any]
GAP_FLAGS: Final = 32 | 1024  # collector.usage.UsageFlag.GAP | GAP_TOO_LONG

GROUPINGS: Final = {
    "period": (("period",), "i.period"),
    "customer": (("customer_id", "customer"), "i.customer_id, c.name"),
    "plan": (("plan",), "coalesce(p.code, '(no plan)')"),
}


def _table(name: str, columns: tuple[str, ...], rows: list[Any]) -> Table:
    return Table(name, columns, tuple(tuple(r) for r in rows))


def revenue(
    conn: Conn, period_from: str, period_to: str, *, group_by: str, drafts: bool = False
) -> Table:
    """Net revenue (sum of rounded invoice lines, tax excluded) per ``group_by`` (period,
    customer or plan) and currency, for invoices of periods ``period_from``..``period_to``
    (inclusive, ``YYYY-MM``); final invoices only unless ``drafts``."""
    if group_by not in GROUPINGS:
        raise ValidationFailed(f"group_by must be one of {sorted(GROUPINGS)}")
    cols, expr = GROUPINGS[group_by]
    query = sql.SQL(
        "SELECT {expr}, i.currency, count(DISTINCT i.invoice_id), sum(l.amount),"
        " sum(l.amount) FILTER (WHERE l.kind IN ('adjustment', 'credit'))"
        " FROM invoice_lines l JOIN invoices i USING (invoice_id)"
        " JOIN customers c ON c.customer_id = i.customer_id"
        " LEFT JOIN subscriptions s ON s.subscription_id = l.subscription_id"
        " LEFT JOIN plan_versions v ON v.plan_version_id = s.plan_version_id"
        " LEFT JOIN plans p ON p.plan_id = v.plan_id"
        " WHERE i.period >= %s AND i.period <= %s AND (i.status = 'final' OR %s)"
        " GROUP BY {expr}, i.currency ORDER BY {expr}, i.currency"
    ).format(expr=sql.SQL(expr))
    with translate_errors("revenue report"):
        rows = conn.execute(query, (period_from, period_to, drafts)).fetchall()
    return _table(
        f"revenue_by_{group_by}",
        (*cols, "currency", "invoices", "net_revenue", "of_which_corrections"),
        [(*r[:-1], r[-1] if r[-1] is not None else 0) for r in rows],
    )


def top_consumers(conn: Conn, start: datetime, end: datetime, *, limit: int) -> Table:
    """The ``limit`` customers with the most usage in ``[start, end)`` per unit (their meters
    while subscribed), with the estimated part."""
    with translate_errors("top consumers report"):
        rows = conn.execute(
            "SELECT unit, rank, customer_id, name, quantity, estimated FROM ("
            " SELECT r.unit, c.customer_id, c.name, sum(u.quantity) AS quantity,"
            "  sum(u.estimated) AS estimated,"
            "  rank() OVER (PARTITION BY r.unit ORDER BY sum(u.quantity) DESC) AS rank"
            " FROM usage_15m u JOIN subscriptions s ON s.series_id = u.series_id"
            "  AND u.bucket >= s.valid_from AND u.bucket < coalesce(s.valid_to, 'infinity')"
            " JOIN series r ON r.series_id = u.series_id"
            " JOIN customers c ON c.customer_id = s.customer_id"
            " WHERE u.bucket >= %s AND u.bucket < %s"
            " GROUP BY r.unit, c.customer_id, c.name) t"
            " WHERE rank <= %s ORDER BY unit, rank, customer_id",
            (start, end, limit),
        ).fetchall()
    return _table(
        "top_consumers", ("unit", "rank", "customer_id", "customer", "quantity", "estimated"),
        rows,
    )


def unbilled_usage(conn: Conn, start: datetime, end: datetime) -> Table:
    """Usage in ``[start, end)`` that no final invoice covers: of meters not subscribed at the
    time, and of subscribed meters whose customer has no final invoice for that time."""
    with translate_errors("unbilled usage report"):
        rows = conn.execute(
            "SELECT CASE WHEN s.subscription_id IS NULL THEN 'not subscribed'"
            "  ELSE 'no final invoice' END, s.customer_id, u.series_id, r.device_id, r.unit,"
            " min(u.bucket), max(u.bucket) + interval '15 minutes',"
            " sum(u.quantity), sum(u.estimated)"
            " FROM usage_15m u JOIN series r ON r.series_id = u.series_id"
            " LEFT JOIN subscriptions s ON s.series_id = u.series_id"
            "  AND u.bucket >= s.valid_from AND u.bucket < coalesce(s.valid_to, 'infinity')"
            " WHERE u.bucket >= %s AND u.bucket < %s AND u.quantity <> 0"
            " AND (s.subscription_id IS NULL OR NOT EXISTS (SELECT 1 FROM invoices i"
            "  WHERE i.customer_id = s.customer_id AND i.status = 'final'"
            "  AND u.bucket >= i.period_start AND u.bucket < i.period_end))"
            " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2 NULLS FIRST, 3",
            (start, end),
        ).fetchall()
    return _table(
        "unbilled_usage",
        ("reason", "customer_id", "series_id", "device_id", "unit", "first_bucket",
         "end_of_last_bucket", "quantity", "estimated"),
        rows,
    )


def estimated_usage(conn: Conn, start: datetime, end: datetime) -> Table:
    """Per meter with estimated usage in ``[start, end)``: quantity, estimated part and share,
    highest share first."""
    with translate_errors("estimated usage report"):
        rows = conn.execute(
            "SELECT u.series_id, r.device_id, r.unit, sum(u.quantity), sum(u.estimated),"
            " CASE WHEN sum(u.quantity) > 0 THEN sum(u.estimated) / sum(u.quantity) END"
            " FROM usage_15m u JOIN series r ON r.series_id = u.series_id"
            " WHERE u.bucket >= %s AND u.bucket < %s GROUP BY 1, 2, 3"
            " HAVING sum(u.estimated) > 0 ORDER BY 6 DESC NULLS LAST, 1",
            (start, end),
        ).fetchall()
    return _table(
        "estimated_usage",
        ("series_id", "device_id", "unit", "quantity", "estimated", "estimated_share"),
        rows,
    )


def device_health(conn: Conn, start: datetime, end: datetime) -> Table:
    """Per device with gaps or dead letters in ``[start, end)``: quarter hours with a reading
    gap, the estimated usage, dead letters and the latest dead letter's reason."""
    with translate_errors("device health report"):
        rows = conn.execute(
            "WITH gaps AS (SELECT r.device_id, count(*) FILTER (WHERE u.flags & %s <> 0) AS gap,"
            "  sum(u.estimated) AS est FROM usage_15m u JOIN series r USING (series_id)"
            "  WHERE u.bucket >= %s AND u.bucket < %s GROUP BY 1),"
            " dl AS (SELECT split_part(topic, '/', 3) AS device_id, count(*) AS n,"
            "  (array_agg(reason ORDER BY received_at DESC))[1] AS last_reason"
            "  FROM dead_letters WHERE received_at >= %s AND received_at < %s GROUP BY 1)"
            " SELECT coalesce(g.device_id, d.device_id), coalesce(g.gap, 0),"
            "  coalesce(g.est, 0), coalesce(d.n, 0), d.last_reason"
            " FROM gaps g FULL JOIN dl d ON d.device_id = g.device_id"
            " WHERE coalesce(g.gap, 0) > 0 OR coalesce(d.n, 0) > 0"
            " ORDER BY 4 DESC, 2 DESC, 1",
            (GAP_FLAGS, start, end, start, end),
        ).fetchall()
    return _table(
        "device_health",
        ("device_id", "gap_quarter_hours", "estimated", "dead_letters", "last_dead_letter_reason"),
        rows,
    )


def final_invoices(conn: Conn, period: str) -> list[tuple[int, int, str | None, Any]]:
    """``(invoice_id, customer_id, number, billed)`` of the period's final invoices, where
    ``billed`` is the exact sum of their usage, demand and fixed lines (corrections of other
    periods excluded)."""
    with translate_errors("load final invoices"):
        rows = conn.execute(
            "SELECT i.invoice_id, i.customer_id, i.number, coalesce(sum(l.amount_unrounded)"
            " FILTER (WHERE l.kind IN ('usage', 'demand', 'fixed')), 0)"
            " FROM invoices i LEFT JOIN invoice_lines l USING (invoice_id)"
            " WHERE i.period = %s AND i.status = 'final' GROUP BY 1 ORDER BY 2",
            (period,),
        ).fetchall()
    return [(int(r[0]), int(r[1]), r[2], r[3]) for r in rows]
