"""Checking alert rules against the current period (orchestrates storage calls).

For every active rule and each customer it covers (its customer, or all customers for a
staff rule without one): the value of the current period so far (usage of the meters of
the rule's unit, or the running charge priced by the billing core) against the rule's limit.
A crossing records an alert **once per (rule, customer, period)** (a unique key) and emits
``alert.triggered`` in the same transaction; usage and running charges only grow within a
period, so a period has at most one crossing per rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from collector.alerts.rules import AlertRule, Metric, limit_for
from collector.analytics.forecasting import current_period, customer_bill_forecast
from collector.billing.periods import period_for
from collector.errors import AnalyticsError
from collector.storage import alert_store, billing_store
from collector.storage.database import Pool
from collector.webhooks.events import EventSink, EventType

__all__ = ["Fired", "evaluate_alerts"]

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Fired:
    alert_id: int
    rule_id: int
    customer_id: int
    period: str
    value: Decimal
    limit: Decimal
    event_id: str | None


def _value(conn: Conn, rule: AlertRule, customer_id: int, now: datetime) -> tuple[
    str, Decimal, Decimal | None
]:
    """(period, value so far, previous period's value) of ``rule`` for the customer."""
    c = billing_store.get_customer(conn, customer_id)
    period = current_period(now, c.spec.time_zone, c.spec.anchor_day)
    prev = period_for(period.key.previous(), c.spec.time_zone, c.spec.anchor_day)
    if rule.metric is Metric.QUANTITY:
        assert rule.unit is not None
        value = alert_store.usage_total(conn, customer_id, rule.unit, period.start, now)
        before = alert_store.usage_total(conn, customer_id, rule.unit, prev.start, prev.end)
        return str(period.key), value, before
    try:
        value = customer_bill_forecast(conn, customer_id, now).to_date.total
    except AnalyticsError:  # no meters this period: nothing runs up
        value = Decimal(0)
    return str(period.key), value, alert_store.invoice_total(conn, customer_id, str(prev.key))


def evaluate_alerts(pool: Pool, now: datetime, sink: EventSink) -> list[Fired]:
    """Check every active rule; returns the alerts recorded now."""
    with pool.connection() as conn:
        rules = alert_store.list_rules(conn, active_only=True)
        everyone = alert_store.customer_ids(conn) if any(
            r.customer_id is None for r in rules
        ) else []
    fired: list[Fired] = []
    for rule in rules:
        for cid in [rule.customer_id] if rule.customer_id is not None else everyone:
            with pool.connection() as conn, conn.transaction():
                period, value, before = _value(conn, rule, cid, now)
                limit = limit_for(rule, before)
                if limit is None or value < limit:
                    continue
                alert_id = alert_store.insert_alert(
                    conn, rule.rule_id, cid, period, value=value, limit_value=limit, at=now
                )
                if alert_id is None:
                    continue
                event_id = sink.emit(
                    conn,
                    EventType.ALERT_TRIGGERED,
                    {
                        "alert_id": alert_id, "rule_id": rule.rule_id, "rule": rule.name,
                        "owner": rule.owner, "customer_id": cid, "period": period,
                        "metric": rule.metric.value, "unit": rule.unit,
                        "value": str(value), "limit": str(limit),
                        "relative": rule.relative, "threshold": str(rule.threshold),
                    },
                    at=now,
                    customer_id=cid,
                )
                alert_store.set_alert_event(conn, alert_id, event_id)
                fired.append(Fired(alert_id, rule.rule_id, cid, period, value, limit, event_id))
    return fired
