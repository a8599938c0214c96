"""Honest states of the portal: an hourly meter is measured (not estimated), days without
readings say "no data", future days are empty, DST hours carry their offset, freshness is the
time of the latest reading."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from fastapi.testclient import TestClient

from collector.billing import accounts
from collector.storage.usage_store import refresh_usage
from collector.usage.cadence import learned_config, learned_interval
from tests.collector.billing.conftest import utc
from tests.collector.portal.conftest import Clock, make_account, make_meter, make_plan


def _readings(conn: psycopg.Connection[Any], sid: int, ts: list[float], vals: list[float]) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO readings (series_id, ts, value) SELECT %s, to_timestamp(t), v"
            " FROM unnest(%s::float8[], %s::float8[]) AS x(t, v)",
            (sid, ts, vals),
        )
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
            " VALUES (%s, to_timestamp(%s), to_timestamp(%s))",
            (sid, ts[0], ts[-1]),
        )


def test_learned_interval_is_the_median_spacing() -> None:
    """An hourly meter with one missing reading still has a 3600 s cadence."""
    ts = np.array([0, 3600, 7200, 14400, 18000, 21600], dtype=np.float64)
    assert learned_interval(ts) == 3600.0
    assert learned_config(ts).expected_interval_s == 3600.0


def test_learning_never_tightens_the_default() -> None:
    """A meter read every minute keeps the 15-minute default; too few readings teach nothing."""
    assert learned_config(np.arange(0, 600, 60, dtype=np.float64)).expected_interval_s == 900.0
    assert learned_interval(np.array([0.0, 3600.0])) is None


def test_hourly_meter_is_measured_not_estimated(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A register read once an hour (no configuration stored) shows 0 % estimated."""
    pv = make_plan(conn)
    acct = make_account(conn, "Hourly BV")
    sid = make_meter(conn, "hourly-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    t0 = utc(2026, 3, 2).timestamp()
    ts = [t0 + 3600 * k for k in range(49)]
    _readings(conn, sid, ts, [500.0 + 2 * k for k in range(49)])
    refresh_usage(conn, utc(2026, 3, 5))
    body = client.get(
        f"/portal/consumption/meters/{sid}",
        params={"from": "2026-03-02T00:00Z", "to": "2026-03-04T00:00Z", "resolution": "1d"},
        headers=acct.auth,
    ).json()
    assert [round(b["quantity"], 9) for b in body["buckets"]] == [48.0, 48.0]
    assert body["estimated_share"] == 0.0


def test_days_without_readings_and_future_days(
    client: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """Days with no readings say "no data" (JSON: ``no_data``), future days are empty."""
    pv = make_plan(conn)
    acct = make_account(conn, "Gaps NV")
    sid = make_meter(conn, "gaps-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    t0 = utc(2026, 4, 2).timestamp()
    ts = [t0 + 900 * k for k in range(97)]
    _readings(conn, sid, ts, [10.0 + k for k in range(97)])
    refresh_usage(conn, utc(2026, 4, 5))
    clock.now = utc(2026, 4, 10, 12)
    body = client.get(
        f"/portal/consumption/meters/{sid}",
        params={"from": "2026-04-01T00:00Z", "to": "2026-04-15T00:00Z", "resolution": "1d"},
        headers=acct.auth,
    ).json()
    states = [b["state"] for b in body["buckets"]]
    assert states[0] == "no_data"  # 1 April: nothing read
    assert states[1] == "measured"  # 2 April
    assert states[5] == "no_data"  # 6 April: nothing read
    assert states[9] == "no_data"  # 10 April, today: nothing read yet
    assert states[10:] == ["future"] * 4
    assert all(b["quantity"] is None for b in body["buckets"][10:])
    page = client.get("/portal/meters/" + str(sid), params={"month": "2026-04"}, headers=acct.auth)
    assert page.status_code == 200
    assert "0.00 kWh (all measured)" not in page.text
    assert "no data" in page.text


def test_dst_hours_show_their_offset(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """On the night clocks go back, 02:00 appears twice, once +02:00 and once +01:00."""
    pv = make_plan(conn)
    acct = make_account(conn, "Zomertijd", tz="Europe/Amsterdam")
    sid = make_meter(conn, "dst-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 10, 1))
    page = client.get(f"/portal/meters/{sid}", params={"day": "2026-10-25"}, headers=acct.auth)
    assert page.status_code == 200
    assert "02:00 +02:00" in page.text
    assert "02:00 +01:00" in page.text


def test_freshness_is_the_latest_reading(
    client: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """The dashboard says when the newest reading of the customer's meters was taken."""
    pv = make_plan(conn)
    acct = make_account(conn, "Fresh GmbH", tz="Europe/Berlin")
    sid = make_meter(conn, "fresh-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 4, 1))
    last = datetime(2026, 4, 10, 10, 4, 31, tzinfo=UTC)
    _readings(conn, sid, [last.timestamp() - 900, last.timestamp()], [1.0, 2.0])
    clock.now = utc(2026, 4, 10, 12)
    body = client.get("/portal/consumption/current", headers=acct.auth).json()
    assert body["data_as_of"] == last.isoformat()
    page = client.get("/portal/", headers=acct.auth)
    assert "12:04:31" in page.text  # Berlin wall clock (UTC+2)
