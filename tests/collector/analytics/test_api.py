"""The analytics HTTP API on a real database: scopes, zones, comparisons, profiles, TOU, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.analytics import SeriesWindow
from collector.analytics.loading import load_grid, load_grid_pooled
from collector.api.app import create_app
from collector.billing import accounts
from tests.collector.analytics.test_core import TOU_PLAN
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc

Conn = psycopg.Connection[Any]


@pytest.fixture
def client(pool: psycopg_pool.ConnectionPool[Any]) -> Iterator[TestClient]:
    with TestClient(create_app(pool)) as c:
        yield c


def _customer(conn: Conn, doc: dict[str, Any] | None = None) -> tuple[int, int, int]:
    c = accounts.create_customer(conn, spec(tz="Europe/Amsterdam"))
    _, v = accounts.create_plan(conn, f"p{c.customer_id}", "Basic", doc or plan_doc())
    sid = make_series(conn, f"dev-{c.customer_id}")
    return c.customer_id, sid, v.plan_version_id


def test_customer_days_follow_its_zone_and_subscription(client: TestClient, conn: Conn) -> None:
    """Daily usage in Amsterdam: 29 March has 23 hours; usage before the subscription is out."""
    cid, sid, pv = _customer(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 3, 28, 23))  # 29 March 00:00 local
    put_usage(conn, sid, utc(2026, 3, 27), utc(2026, 4, 2), 1.0, estimated=0.25)
    r = client.get(
        "/analytics/usage",
        params={"scope": "customer", "id": cid, "from": "2026-03-28T00:00Z",
                "to": "2026-03-30T22:00Z", "granularity": "1d"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"]["tz"] == "Europe/Amsterdam"
    assert [b["quantity"] for b in body["buckets"]] == [0.0, 92.0, 96.0]
    assert body["estimated"] == pytest.approx(188 * 0.25)
    assert body["measured"] == pytest.approx(188 * 0.75)


def test_month_over_month_and_year(client: TestClient, conn: Conn) -> None:
    """March vs February vs March last year, by the customer's local months."""
    cid, sid, pv = _customer(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2025, 1, 1))
    put_usage(conn, sid, utc(2025, 2, 28, 23), utc(2025, 3, 31, 22), 0.5)  # March 2025
    put_usage(conn, sid, utc(2026, 1, 31, 23), utc(2026, 2, 28, 23), 1.0)  # February 2026
    put_usage(conn, sid, utc(2026, 2, 28, 23), utc(2026, 3, 31, 22), 1.5)  # March 2026
    r = client.get(
        "/analytics/compare",
        params={"scope": "customer", "id": cid, "from": "2026-03-01T00:00+01:00",
                "to": "2026-04-01T00:00+02:00"},
    )
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["current"]["total"] == pytest.approx(2972 * 1.5)
    assert b["previous"]["total"] == pytest.approx(28 * 96 * 1.0)
    assert b["year_ago"]["total"] == pytest.approx(2972 * 0.5)
    assert b["change_vs_year_ago"] == pytest.approx(2.0)


def test_profile_and_tou_of_a_meter_and_a_plan(client: TestClient, conn: Conn) -> None:
    """A meter's profile finds its peak; a TOU plan splits usage into its periods."""
    cid, sid, pv = _customer(conn, TOU_PLAN)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 6), utc(2026, 3, 8), 1.0)  # Friday + Saturday (UTC plan)
    put_usage(conn, sid, utc(2026, 3, 6, 12), utc(2026, 3, 6, 12, 15), 3.0)
    q = {"from": "2026-03-06T00:00Z", "to": "2026-03-08T00:00Z"}
    r = client.get("/analytics/profile", params={"scope": "meter", "id": sid, **q})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["peak"]["demand_per_hour"] == 12.0
    assert p["peak"]["start"].startswith("2026-03-06T12:00")
    assert len(p["weekday"]) == 96
    r = client.get("/analytics/tou", params={"scope": "customer", "id": cid, **q})
    assert r.status_code == 200, r.text
    (t,) = r.json()["breakdowns"]
    assert t["periods"] == {"offpeak": 144.0, "peak": 50.0}


def test_fleet_usage_is_the_sum_of_its_meters_read_from_the_rollup(
    client: TestClient, conn: Conn
) -> None:
    """Fleet days in Amsterdam across the DST switch equal the sum of its kWh meters' own days
    (the m3 meter stays out), and they come from the fleet rollup, not from usage_15m."""
    a, b = make_series(conn, "fa", "kWh"), make_series(conn, "fb", "kWh")
    w = make_series(conn, "fw", "m3")
    put_usage(conn, a, utc(2026, 3, 27), utc(2026, 4, 1), 1.0, estimated=0.25)
    put_usage(conn, b, utc(2026, 3, 28, 12), utc(2026, 3, 31), 0.5)
    put_usage(conn, w, utc(2026, 3, 27), utc(2026, 4, 1), 9.0)
    q = {"from": "2026-03-27T23:00Z", "to": "2026-03-31T22:00Z", "granularity": "1d",
         "tz": "Europe/Amsterdam"}
    fleet = client.get("/analytics/usage", params={"scope": "fleet", "unit": "kWh", **q}).json()
    meters = [client.get("/analytics/usage", params={"scope": "meter", "id": s, **q}).json()
              for s in (a, b)]
    days = [sum(m["buckets"][d]["quantity"] for m in meters) for d in range(4)]
    assert [x["quantity"] for x in fleet["buckets"]] == pytest.approx(days)
    assert days[1] == pytest.approx(92 + 0.5 * 92)  # 29 March: 23 hours
    assert fleet["estimated"] == pytest.approx(sum(m["estimated"] for m in meters))
    assert fleet["scope"]["series_count"] == 2
    conn.execute("UPDATE usage_fleet_15m SET quantity = quantity * 2 WHERE unit = 'kWh'")
    doubled = client.get("/analytics/usage", params={"scope": "fleet", "unit": "kWh", **q})
    assert doubled.json()["total"] == pytest.approx(2 * fleet["total"])


def test_bad_requests_are_4xx(client: TestClient, conn: Conn) -> None:
    """Unknown scope ids are 404; bad zones, windows and mixed units are 422."""
    q = {"from": "2026-03-06T00:00Z", "to": "2026-03-08T00:00Z"}
    url = "/analytics/usage"
    assert client.get(url, params={"scope": "customer", "id": 999, **q}).status_code == 404
    assert client.get(url, params={"scope": "meter", "id": "x", **q}).status_code == 422
    assert client.get(
        "/analytics/usage", params={"scope": "fleet", "tz": "Mars/Olympus", **q}
    ).status_code == 422
    assert client.get(
        "/analytics/usage",
        params={"scope": "fleet", "from": "2026-03-08T00:00Z", "to": "2026-03-06T00:00Z"},
    ).status_code == 422
    make_series(conn, "a", "kWh")
    make_series(conn, "b", "m3")
    r = client.get("/analytics/usage", params={"scope": "fleet", **q})
    assert r.status_code == 422
    assert "several units" in r.json()["detail"]
    r = client.get("/analytics/usage", params={"scope": "fleet", "unit": "m3", **q})
    assert r.status_code == 200
    assert r.json()["scope"]["series_count"] == 1


def test_anomalies_of_a_site_from_the_database(client: TestClient, conn: Conn) -> None:
    """A water meter with flow every night, marked vacant, read until 10 hours before the end:
    leak, usage while vacant and silence, each with its numbers."""
    sid = make_series(conn, "site-w", "m3")
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 20), 0.002)
    conn.execute(
        "INSERT INTO readings (series_id, ts, value) VALUES (%s, %s, 1.0)",
        (sid, utc(2026, 3, 19, 14)),
    )
    r = client.post(
        "/analytics/vacancies",
        json={"device_id": "site-w", "vacant_from": "2026-03-10T00:00Z",
              "vacant_to": "2026-03-12T00:00Z", "note": "tenant moved out"},
    )
    assert r.status_code == 201, r.text
    assert client.get("/analytics/vacancies", params={"device_id": "site-w"}).json()[0][
        "note"
    ] == "tenant moved out"
    r = client.get(
        "/analytics/anomalies",
        params={"scope": "site", "id": "site-w", "from": "2026-03-01T00:00Z",
                "to": "2026-03-20T00:00Z"},
    )
    assert r.status_code == 200, r.text
    found = {a["kind"]: a for a in r.json()["anomalies"]}
    assert set(found) == {"continuous_flow", "vacant_usage", "silent"}
    assert found["continuous_flow"]["facts"]["min_night_flow_per_hour"] == pytest.approx(0.008)
    assert found["vacant_usage"]["facts"]["days"] == 2
    assert found["silent"]["facts"]["hours_silent"] == pytest.approx(10.0)


def test_vacancy_validation(client: TestClient) -> None:
    """A vacancy ending before it starts, or without offsets, is 422."""
    bad = {"device_id": "x", "vacant_from": "2026-03-10T00:00Z", "vacant_to": "2026-03-09T00:00Z"}
    assert client.post("/analytics/vacancies", json=bad).status_code == 422
    naive = {"device_id": "x", "vacant_from": "2026-03-10T00:00"}
    assert client.post("/analytics/vacancies", json=naive).status_code == 422


def test_whole_meter_and_windowed_scopes_agree(client: TestClient, conn: Conn) -> None:
    """A site (meters summed per day as they stream) and its customer (subscription windows
    cut row by row) give the same 15-minute figures when the meter is subscribed throughout."""
    cid, sid, pv = _customer(conn)
    accounts.assign_meter(conn, cid, sid, pv, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 3), 0.5, estimated=0.1)
    put_usage(conn, sid, utc(2026, 3, 1, 7), utc(2026, 3, 1, 9), 2.0)
    q = {"from": "2026-03-01T00:00Z", "to": "2026-03-03T00:00Z", "granularity": "15m"}
    site = client.get("/analytics/usage", params={"scope": "site", "id": f"dev-{cid}", **q})
    cust = client.get("/analytics/usage", params={"scope": "customer", "id": cid, **q})
    assert site.status_code == cust.status_code == 200
    assert site.json()["buckets"] == cust.json()["buckets"]
    assert site.json()["total"] == pytest.approx(192 * 0.5 + 8 * 1.5)


def test_anomalies_of_too_much_at_once_is_422(client: TestClient, conn: Conn) -> None:
    """1,500 meters over three years would not fit in memory: refused with a reason."""
    conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " SELECT 'g' || i, 'main', 'energy', 'kWh', 'cumulative' FROM generate_series(1, 1500) i"
    )
    r = client.get(
        "/analytics/anomalies",
        params={"scope": "fleet", "from": "2024-01-01T00:00Z", "to": "2026-12-01T00:00Z"},
    )
    assert r.status_code == 422
    assert "narrow the scope" in r.json()["detail"]


def test_a_large_fleet_read_on_two_connections_equals_one(
    pool: psycopg_pool.ConnectionPool[Any], conn: Conn
) -> None:
    """1,200 meters summed on two connections at once give the one-connection figures."""
    conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " SELECT 'f' || i, 'main', 'energy', 'kWh', 'cumulative' FROM generate_series(1, 1197) i"
    )
    sids = [make_series(conn, f"u{i}") for i in range(3)]
    for k, sid in enumerate(sids):
        put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 3), 0.25 * (k + 1), estimated=0.1)
    start, end = utc(2026, 3, 1), utc(2026, 3, 4)
    windows = [SeriesWindow(int(r[0])) for r in conn.execute("SELECT series_id FROM series")]
    assert len(windows) == 1200
    two = load_grid_pooled(pool, windows, start, end)
    one = load_grid(conn, windows, start, end)
    assert (two.quantity == one.quantity).all()
    assert (two.estimated == one.estimated).all()
    assert two.total == pytest.approx(192 * 1.5)
