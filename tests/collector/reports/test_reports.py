"""Staff reports on a real database: revenue, consumers, unbilled/estimated usage, device
health, reconciliation; exports as CSV and Parquet read back exactly."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc

Conn = psycopg.Connection[Any]
Pool = psycopg_pool.ConnectionPool[Any]
MARCH = PeriodKey(2026, 3)


@pytest.fixture
def client(pool: Pool) -> Iterator[TestClient]:
    with TestClient(create_app(pool)) as c:
        yield c


@pytest.fixture
def billed(conn: Conn, pool: Pool) -> dict[str, int]:
    """Two Amsterdam customers billed and finalized for March: A uses 1 kWh per quarter hour
    (2972 kWh: 753.00 net), B 0.5 (1486 kWh: 381.50 net); plans 'basic' and 'cheap'."""
    ids: dict[str, int] = {}
    for name, per, code in (("A", 1.0, "basic"), ("B", 0.5, "cheap")):
        c = accounts.create_customer(conn, spec(name=name))
        _, v = accounts.create_plan(conn, code, code, plan_doc(plan_id=code))
        sid = make_series(conn, f"dev-{name}")
        accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
        put_usage(conn, sid, utc(2026, 2, 28), utc(2026, 4, 2), per)
        ids[name], ids[f"sid{name}"] = c.customer_id, sid
    close_period(pool, MARCH, utc(2026, 4, 10))
    finalize_period(pool, MARCH, utc(2026, 4, 10))
    return ids


def _rows(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["rows"]
    return rows


def test_revenue_by_plan_customer_and_period(client: TestClient, billed: dict[str, int]) -> None:
    """Net revenue is the sum of rounded lines: 753.00 + 381.50 = 1134.50 for March."""
    q = {"period_from": "2026-03", "period_to": "2026-03"}
    by_plan = _rows(client, "/reports/revenue", group_by="plan", **q)
    assert {(r["plan"], r["net_revenue"]) for r in by_plan} == {
        ("basic", "753.00"), ("cheap", "381.50")
    }
    (period,) = _rows(client, "/reports/revenue", group_by="period", **q)
    assert (period["period"], period["invoices"]) == ("2026-03", 2)
    assert period["net_revenue"] == "1134.50"
    by_customer = _rows(client, "/reports/revenue", group_by="customer", **q)
    assert [r["customer"] for r in by_customer] == ["A", "B"]
    r = client.get("/reports/revenue", params={"group_by": "colour", **q})
    assert r.status_code == 422


def test_csv_and_parquet_carry_the_same_exact_values(
    client: TestClient, billed: dict[str, int]
) -> None:
    """The CSV text and the Parquet decimal column hold 753.00 and 381.50 exactly."""
    q = {"period_from": "2026-03", "period_to": "2026-03", "group_by": "plan"}
    r = client.get("/reports/revenue", params={**q, "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["plan"], x["net_revenue"]) for x in rows] == [
        ("basic", "753.00"),
        ("cheap", "381.50"),
    ]
    r = client.get("/reports/revenue", params={**q, "format": "parquet"})
    assert r.status_code == 200
    table = pq.read_table(pa.BufferReader(r.content))
    assert pa.types.is_decimal(table.schema.field("net_revenue").type)
    assert table.column("net_revenue").to_pylist() == [Decimal("753.00"), Decimal("381.50")]


def test_reconciliation_finds_late_usage(
    client: TestClient, conn: Conn, billed: dict[str, int]
) -> None:
    """Right after finalizing every invoice reconciles to zero; 96 kWh arriving late for A's
    March show as 24.00 of usage not yet billed."""
    rows = _rows(client, "/reports/reconciliation", period="2026-03")
    assert [(r["status"], Decimal(r["unexplained"])) for r in rows] == [("ok", 0), ("ok", 0)]
    assert Decimal(rows[0]["billed"]) == Decimal("753")
    put_usage(conn, billed["sidA"], utc(2026, 3, 10), utc(2026, 3, 11), 2.0)  # +96 kWh
    rows = _rows(client, "/reports/reconciliation", period="2026-03")
    a = next(r for r in rows if r["customer_id"] == billed["A"])
    assert a["status"] == "usage not yet billed"
    assert Decimal(a["unexplained"]) == Decimal("24")


def test_unbilled_estimated_top_and_device_health(
    client: TestClient, conn: Conn, billed: dict[str, int]
) -> None:
    """April usage has no final invoice; a meter nobody subscribed is unbilled; estimates,
    ranks, gaps and dead letters show up where they belong."""
    stray = make_series(conn, "dev-stray")
    put_usage(conn, stray, utc(2026, 3, 5), utc(2026, 3, 6), 0.25, estimated=0.1)
    conn.execute(
        "UPDATE usage_15m SET flags = 32 WHERE series_id = %s AND bucket < %s",
        (stray, utc(2026, 3, 5, 2)),
    )
    conn.execute(
        "INSERT INTO dead_letters (received_at, topic, payload, reason)"
        " VALUES (%s, 'tally/v1/dev-B/batch', 'x', 'bad json')",
        (utc(2026, 3, 7),),
    )
    w = {"from": "2026-03-01T00:00Z", "to": "2026-04-02T00:00Z"}
    unbilled = _rows(client, "/reports/unbilled", **w)
    reasons = {(r["reason"], r["series_id"]) for r in unbilled}
    assert ("not subscribed", stray) in reasons
    assert ("no final invoice", billed["sidA"]) in reasons  # 1-2 April local
    assert all(r["series_id"] != billed["sidA"] or r["first_bucket"] >= "2026-03-31T22"
               for r in unbilled)
    est = _rows(client, "/reports/estimated", **w)
    assert est[0]["series_id"] == stray
    assert est[0]["estimated_share"] == pytest.approx(0.4)
    top = _rows(client, "/reports/top-consumers", limit=1, **w)
    assert [(r["rank"], r["customer"]) for r in top] == [(1, "A")]
    health = {r["device_id"]: r for r in _rows(client, "/reports/device-health", **w)}
    assert health["dev-stray"]["gap_quarter_hours"] == 8
    assert health["dev-B"]["dead_letters"] == 1
    assert health["dev-B"]["last_dead_letter_reason"] == "bad json"
    assert client.get("/reports/unbilled", params={"from": "2026-03-01T00:00",
                                                    "to": "2026-04-01T00:00Z"}).status_code == 422
