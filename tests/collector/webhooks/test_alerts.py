"""Alert rules: a crossing records one alert and one alert.triggered event, once per period."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.alerts.evaluate import evaluate_alerts
from collector.alerts.rules import AlertRule, Metric, limit_for
from collector.api.app import create_app
from collector.billing import accounts
from collector.errors import NotificationError
from collector.webhooks.memory import MemorySink
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc

Conn = psycopg.Connection[Any]
Pool = psycopg_pool.ConnectionPool[Any]
D = Decimal


def test_limits_absolute_and_relative() -> None:
    """Absolute limits are the threshold; relative ones a % of last period, none without it."""
    rule = AlertRule(1, "staff", None, Metric.AMOUNT, None, D("150"), relative=True)
    assert limit_for(rule, D("200")) == D("300")
    assert limit_for(rule, None) is None
    assert limit_for(AlertRule(1, "customer", 4, Metric.QUANTITY, "kWh", D("5"), False), None) == 5
    with pytest.raises(NotificationError):
        AlertRule(1, "customer", None, Metric.AMOUNT, None, D("1"), False)
    with pytest.raises(NotificationError):
        AlertRule(1, "staff", None, Metric.QUANTITY, None, D("1"), False)


@pytest.fixture
def client(pool: Pool) -> Iterator[TestClient]:
    with TestClient(create_app(pool)) as c:
        yield c


def _customer(conn: Conn) -> tuple[int, int]:
    c = accounts.create_customer(conn, spec())
    _, v = accounts.create_plan(conn, f"p{c.customer_id}", "Basic", plan_doc())
    sid = make_series(conn, f"dev-{c.customer_id}")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    return c.customer_id, sid


def test_crossing_fires_once_per_period(client: TestClient, pool: Pool, conn: Conn) -> None:
    """500 kWh in March: not crossed at 480 kWh, crossed at 504, not again later in March,
    again in April (a new period); an amount rule and a relative rule fire with their numbers."""
    cid, sid = _customer(conn)
    for body in (
        {"owner": "customer", "customer_id": cid, "metric": "quantity", "unit": "kWh",
         "threshold": "500", "name": "500 kWh"},
        {"owner": "staff", "metric": "amount", "threshold": "200"},
        {"owner": "staff", "customer_id": cid, "metric": "quantity", "unit": "kWh",
         "threshold": "80", "relative": True},
    ):
        r = client.post("/alerts/rules", json=body)
        assert r.status_code == 201, r.text
    assert client.post("/alerts/rules", json={"owner": "customer", "metric": "amount",
                                              "threshold": "1"}).status_code == 422
    unknown = {"owner": "staff", "customer_id": 999, "metric": "amount", "threshold": "1"}
    assert client.post("/alerts/rules", json=unknown).status_code == 404
    sink = MemorySink()
    put_usage(conn, sid, utc(2026, 2, 28, 23), utc(2026, 3, 5, 23), 1.0)  # 480 kWh
    assert [f.rule_id for f in evaluate_alerts(pool, utc(2026, 3, 5, 23), sink)] == []
    put_usage(conn, sid, utc(2026, 3, 5, 23), utc(2026, 3, 6, 1), 3.0)  # +24 → 504
    fired = evaluate_alerts(pool, utc(2026, 3, 6, 1), sink)
    assert [(f.rule_id, f.value) for f in fired] == [(1, D("504"))]
    put_usage(conn, sid, utc(2026, 3, 6, 1), utc(2026, 3, 14), 1.0)
    fired = evaluate_alerts(pool, utc(2026, 3, 14), sink)
    assert [f.rule_id for f in fired] == [2]  # the running charge passed 200.00
    assert fired[0].value >= D("200")
    assert evaluate_alerts(pool, utc(2026, 3, 20), sink) == []
    put_usage(conn, sid, utc(2026, 3, 14), utc(2026, 4, 30), 1.0)
    fired = evaluate_alerts(pool, utc(2026, 4, 29), sink)
    assert sorted(f.rule_id for f in fired) == [1, 2, 3]
    rel = next(f for f in fired if f.rule_id == 3)
    assert rel.limit == D("2988") * D("0.8")  # 80 % of March's 2988 kWh
    assert [e.event_type.value for e in sink.events] == ["alert.triggered"] * 5
    assert sink.events[0].data["value"] == "504.0"
    alerts = client.get("/alerts", params={"customer_id": cid}).json()
    assert len(alerts) == 5
    assert client.delete("/alerts/rules/1").status_code == 204
    assert client.delete("/alerts/rules/99").status_code == 404
