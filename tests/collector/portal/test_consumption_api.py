"""Consumption API: the customer's share of its meters' usage, in its own time zone."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from collector.billing import accounts
from tests.collector.billing.conftest import plan_doc, put_usage, utc
from tests.collector.portal.conftest import Clock, make_account, make_meter, make_plan


def test_daily_usage_is_bucketed_at_local_midnight_far_east(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Pacific/Kiritimati (UTC+14): local 10 March runs 9 March 10:00Z to 10 March 10:00Z."""
    pv = make_plan(conn)
    acct = make_account(conn, "Line Islands Co", tz="Pacific/Kiritimati")
    sid = make_meter(conn, "kir-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, utc(2026, 3, 9, 10), utc(2026, 3, 9, 22), 1.0)  # 48 q-h: 48 kWh
    put_usage(conn, sid, utc(2026, 3, 9, 22), utc(2026, 3, 10, 10), 0.5)  # 48 q-h: 24 kWh
    put_usage(conn, sid, utc(2026, 3, 10, 10), utc(2026, 3, 10, 11), 2.0)  # next local day: 8
    body = client.get(
        f"/portal/consumption/meters/{sid}",
        params={"from": "2026-03-09T10:00Z", "to": "2026-03-11T10:00Z", "resolution": "1d"},
        headers=acct.auth,
    ).json()
    assert body["time_zone"] == "Pacific/Kiritimati"
    assert [b["start"] for b in body["buckets"]] == [
        "2026-03-09T10:00:00+00:00",
        "2026-03-10T10:00:00+00:00",
    ]
    assert [b["quantity"] for b in body["buckets"]] == [72.0, 8.0]
    assert body["total"] == 80.0


def test_hourly_usage_in_a_half_hour_zone(
    client: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """America/St_Johns (UTC−02:30 in summer): local hours start at hh:30 UTC."""
    clock.now = utc(2026, 6, 11)  # the hours asked for are past (future ones are empty)
    pv = make_plan(conn)
    acct = make_account(conn, "Newfoundland Ltd", tz="America/St_Johns")
    sid = make_meter(conn, "nl-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 6, 1))
    put_usage(conn, sid, utc(2026, 6, 10, 12), utc(2026, 6, 10, 14), 1.0)  # 12:00Z-14:00Z
    body = client.get(
        f"/portal/consumption/meters/{sid}",
        params={"from": "2026-06-10T11:30Z", "to": "2026-06-10T14:30Z", "resolution": "1h"},
        headers=acct.auth,
    ).json()
    # 11:30-12:30Z holds 12:00-12:30 (2 q-h), 12:30-13:30Z 4 q-h, 13:30-14:30Z 2 q-h
    assert [b["quantity"] for b in body["buckets"]] == [2.0, 4.0, 2.0]
    assert body["buckets"][0]["start"] == "2026-06-10T11:30:00+00:00"


def test_estimated_share_is_reported(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """A day with 1 of 4 kWh per hour estimated shows a 25 % estimated share."""
    pv = make_plan(conn)
    acct = make_account(conn, "Est BV")
    sid = make_meter(conn, "est-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, utc(2026, 3, 5), utc(2026, 3, 6), 1.0, estimated=0.25)
    body = client.get(
        f"/portal/consumption/meters/{sid}",
        params={"from": "2026-03-05T00:00Z", "to": "2026-03-06T00:00Z", "resolution": "1d"},
        headers=acct.auth,
    ).json()
    assert body["total"] == 96.0
    assert body["total_estimated"] == 24.0
    assert body["estimated_share"] == pytest.approx(0.25)
    assert body["buckets"][0]["estimated_share"] == pytest.approx(0.25)


def test_meter_moved_mid_month_is_split_between_customers(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Moved at 15 March 12:07Z: A keeps every quarter hour that started before (up to 12:00)."""
    pv = make_plan(conn)
    a = make_account(conn, "A")
    b = make_account(conn, "B")
    sid = make_meter(conn, "moved")
    sub = accounts.assign_meter(conn, a.customer_id, sid, pv, utc(2026, 3, 1))
    accounts.move_meter(conn, sub.subscription_id, b.customer_id, utc(2026, 3, 15, 12, 7))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 4, 1), 1.0)
    params = {"from": "2026-03-01T00:00Z", "to": "2026-04-01T00:00Z", "resolution": "1d"}
    mine = client.get(f"/portal/consumption/meters/{sid}", params=params, headers=a.auth).json()
    theirs = client.get(f"/portal/consumption/meters/{sid}", params=params, headers=b.auth).json()
    assert mine["total"] == 14 * 96 + 49  # 1 to 14 March, then 00:00..12:00 on the 15th
    assert theirs["total"] == 16 * 96 + 47
    assert mine["buckets"][14]["quantity"] == 49.0
    assert theirs["buckets"][14]["quantity"] == 47.0
    assert theirs["buckets"][0]["quantity"] == 0.0
    assert theirs["buckets"][0]["subscribed"] == 0.0
    assert mine["buckets"][20]["quantity"] == 0.0


def test_meters_list_shows_windows_and_only_own_meters(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A customer lists its own meters (a moved one as inactive), never another's."""
    pv = make_plan(conn)
    a = make_account(conn, "A")
    b = make_account(conn, "B")
    moved = make_meter(conn, "moved")
    only_b = make_meter(conn, "b-only")
    sub = accounts.assign_meter(conn, a.customer_id, moved, pv, utc(2026, 3, 1))
    accounts.move_meter(conn, sub.subscription_id, b.customer_id, utc(2026, 3, 15))
    accounts.assign_meter(conn, b.customer_id, only_b, pv, utc(2026, 3, 1))
    listed = client.get("/portal/consumption/meters", headers=a.auth).json()["meters"]
    assert [(m["series_id"], m["active"]) for m in listed] == [(moved, False)]
    assert listed[0]["subscriptions"] == [
        {"from": "2026-03-01T00:00:00+00:00", "to": "2026-03-15T00:00:00+00:00"}
    ]
    assert client.get(f"/portal/consumption/meters/{only_b}", headers=a.auth).status_code == 404
    assert client.get("/portal/consumption/meters/999999", headers=a.auth).status_code == 404


def test_current_period_so_far_and_previous(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """On 10 April 12:00Z: April so far, March (whole and 1-10), per meter and per unit."""
    pv = make_plan(conn)
    acct = make_account(conn, "Now BV")
    s1, s2 = make_meter(conn, "m1"), make_meter(conn, "m2")
    for sid in (s1, s2):
        accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, s1, utc(2026, 3, 1), utc(2026, 4, 1), 0.25)  # 31 days × 24 kWh = 744
    put_usage(conn, s1, utc(2026, 4, 1), utc(2026, 4, 10, 12), 0.5)  # 9.5 days × 48 = 456
    put_usage(conn, s2, utc(2026, 4, 2), utc(2026, 4, 3), 1.0, estimated=1.0)  # 96, estimated
    body = client.get("/portal/consumption/current", headers=acct.auth).json()
    assert body["period"]["key"] == "2026-04"
    assert body["previous_period"]["key"] == "2026-03"
    per_meter = {m["series_id"]: m for m in body["meters"]}
    assert per_meter[s1]["this_period"] == 456.0
    assert per_meter[s1]["previous_period"] == 744.0
    assert per_meter[s1]["previous_period_same_days"] == 240.0  # 1..10 March
    assert per_meter[s2]["this_period"] == 96.0
    assert per_meter[s2]["this_period_estimated_share"] == 1.0
    (unit,) = body["units"]
    assert unit["unit"] == "kWh"
    assert unit["this_period"] == 552.0
    assert unit["this_period_estimated"] == 96.0
    assert body["running_charge"] is None


def test_invalid_ranges_are_422(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """An empty range, a naive timestamp or a too-long 15-minute range is refused."""
    pv = make_plan(conn)
    acct = make_account(conn, "R")
    sid = make_meter(conn, "r")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    url = f"/portal/consumption/meters/{sid}"
    for params in (
        {"from": "2026-03-02T00:00Z", "to": "2026-03-01T00:00Z"},
        {"from": "2026-03-01T00:00", "to": "2026-03-02T00:00"},
        {"from": "2026-01-01T00:00Z", "to": "2026-03-01T00:00Z", "resolution": "15m"},
    ):
        assert client.get(url, params=params, headers=acct.auth).status_code == 422


def test_plan_change_keeps_the_whole_meter(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A plan change mid-month splits the subscription but the customer keeps all usage."""
    pv = make_plan(conn)
    _, other = accounts.create_plan(conn, "other", "Other", plan_doc("0.30", plan_id="other"))
    acct = make_account(conn, "Plan BV")
    sid = make_meter(conn, "plan-1")
    sub = accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    accounts.change_plan(conn, sub.subscription_id, other.plan_version_id, utc(2026, 3, 15, 12, 7))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 4, 1), 1.0)
    body = client.get(
        f"/portal/consumption/meters/{sid}",
        params={"from": "2026-03-01T00:00Z", "to": "2026-04-01T00:00Z", "resolution": "1mo"},
        headers=acct.auth,
    ).json()
    assert [b["quantity"] for b in body["buckets"]] == [31 * 96]
    assert len(body["subscriptions"]) == 2
