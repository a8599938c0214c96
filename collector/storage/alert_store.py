"""Alert rules, recorded alerts, and the period values rules are checked against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from collector.alerts.rules import AlertRule, Metric
from collector.errors import NotFound
from collector.storage.database import translate_errors

__all__ = [
    "Alert",
    "create_rule",
    "customer_ids",
    "deactivate_customer_rule",
    "deactivate_rule",
    "insert_alert",
    "invoice_total",
    "list_alerts",
    "list_rules",
    "set_alert_event",
    "usage_total",
]

Conn = psycopg.Connection[Any]
_RULE = "rule_id, owner, customer_id, metric, unit, threshold, relative, name, active"


def _rule(r: Sequence[Any]) -> AlertRule:
    return AlertRule(int(r[0]), r[1], r[2], Metric(r[3]), r[4], r[5], bool(r[6]), r[7], r[8])


def create_rule(conn: Conn, rule: AlertRule) -> AlertRule:
    with translate_errors("create alert rule"):
        if rule.customer_id is not None and conn.execute(
            "SELECT 1 FROM customers WHERE customer_id = %s", (rule.customer_id,)
        ).fetchone() is None:
            raise NotFound(f"customer {rule.customer_id} does not exist")
        row = conn.execute(
            "INSERT INTO alert_rules (owner, customer_id, metric, unit, threshold, relative,"
            " name) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING rule_id, owner, customer_id,"
            " metric, unit, threshold, relative, name, active",
            (rule.owner, rule.customer_id, rule.metric.value, rule.unit, rule.threshold,
             rule.relative, rule.name),
        ).fetchone()
    assert row is not None
    return _rule(row)


def list_rules(
    conn: Conn, *, customer_id: int | None = None, active_only: bool = False
) -> list[AlertRule]:
    with translate_errors("list alert rules"):
        rows = conn.execute(
            "SELECT rule_id, owner, customer_id, metric, unit, threshold, relative, name, active"
            " FROM alert_rules WHERE (%s::bigint IS NULL OR customer_id = %s)"
            " AND (active OR NOT %s) ORDER BY rule_id",
            (customer_id, customer_id, active_only),
        ).fetchall()
    return [_rule(r) for r in rows]


def deactivate_rule(conn: Conn, rule_id: int) -> None:
    with translate_errors("deactivate alert rule"):
        cur = conn.execute("UPDATE alert_rules SET active = false WHERE rule_id = %s", (rule_id,))
    if cur.rowcount == 0:
        raise NotFound(f"alert rule {rule_id} does not exist")


def deactivate_customer_rule(conn: Conn, rule_id: int, customer_id: int) -> None:
    """Stop a rule the customer set itself; NotFound for any other rule (another customer's,
    a staff rule, an unknown id), so one customer cannot tell another's rules exist."""
    with translate_errors("deactivate alert rule"):
        cur = conn.execute(
            "UPDATE alert_rules SET active = false WHERE rule_id = %s AND customer_id = %s"
            " AND owner = 'customer'",
            (rule_id, customer_id),
        )
    if cur.rowcount == 0:
        raise NotFound(f"alert rule {rule_id} does not exist")


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: int
    rule_id: int
    customer_id: int
    period: str
    value: Decimal
    limit_value: Decimal
    crossed_at: datetime
    event_id: str | None


def insert_alert(
    conn: Conn,
    rule_id: int,
    customer_id: int,
    period: str,
    *,
    value: Decimal,
    limit_value: Decimal,
    at: datetime,
) -> int | None:
    """Record a crossing; None if this rule already fired for the customer's period."""
    with translate_errors("record alert"):
        row = conn.execute(
            "INSERT INTO alerts (rule_id, customer_id, period, value, limit_value, crossed_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (rule_id, customer_id, period)"
            " DO NOTHING RETURNING alert_id",
            (rule_id, customer_id, period, value, limit_value, at),
        ).fetchone()
    return None if row is None else int(row[0])


def set_alert_event(conn: Conn, alert_id: int, event_id: str | None) -> None:
    with translate_errors("record alert event"):
        conn.execute("UPDATE alerts SET event_id = %s WHERE alert_id = %s", (event_id, alert_id))


def list_alerts(conn: Conn, *, customer_id: int | None = None, limit: int = 100) -> list[Alert]:
    with translate_errors("list alerts"):
        rows = conn.execute(
            "SELECT alert_id, rule_id, customer_id, period, value, limit_value, crossed_at,"
            " event_id FROM alerts WHERE (%s::bigint IS NULL OR customer_id = %s)"
            " ORDER BY alert_id DESC LIMIT %s",
            (customer_id, customer_id, limit),
        ).fetchall()
    return [Alert(*r) for r in rows]


def usage_total(conn: Conn, customer_id: int, unit: str, start: datetime, end: datetime) -> Decimal:
    """Usage of the customer's meters of ``unit`` in ``[start, end)``, while subscribed."""
    with translate_errors("sum customer usage"):
        row = conn.execute(
            "SELECT coalesce(sum(u.quantity), 0) FROM usage_15m u"
            " JOIN subscriptions s ON s.series_id = u.series_id AND u.bucket >= s.valid_from"
            "  AND u.bucket < coalesce(s.valid_to, 'infinity')"
            " JOIN series r ON r.series_id = u.series_id"
            " WHERE s.customer_id = %s AND r.unit = %s AND u.bucket >= %s AND u.bucket < %s",
            (customer_id, unit, start, end),
        ).fetchone()
    assert row is not None
    return Decimal(repr(float(row[0])))


def invoice_total(conn: Conn, customer_id: int, period: str) -> Decimal | None:
    """Total of the customer's invoice (final or draft) for ``period``, if any."""
    with translate_errors("load invoice total"):
        row = conn.execute(
            "SELECT total FROM invoices WHERE customer_id = %s AND period = %s",
            (customer_id, period),
        ).fetchone()
    return None if row is None else Decimal(row[0])


def customer_ids(conn: Conn) -> list[int]:
    with translate_errors("list customers"):
        rows = conn.execute("SELECT customer_id FROM customers ORDER BY customer_id").fetchall()
    return [int(r[0]) for r in rows]
