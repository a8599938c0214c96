"""From register readings through the usage engine to the portal, in a UTC+05:45 zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from collector.billing import accounts
from collector.storage.usage_store import refresh_usage
from tests.collector.billing.conftest import utc
from tests.collector.portal.conftest import make_account, make_meter, make_plan


def test_readings_become_local_daily_usage(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A register rising 1 kWh per quarter hour over Kathmandu's 10 March gives 96 kWh that day."""
    pv = make_plan(conn)
    acct = make_account(conn, "Himal Pvt", tz="Asia/Kathmandu")
    sid = make_meter(conn, "ktm-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    t0 = datetime(2026, 3, 9, 18, 15, tzinfo=UTC).timestamp()  # local midnight of 10 March
    ts = [t0 + 900 * k for k in range(97)]
    with conn.transaction():
        conn.execute(
            "INSERT INTO readings (series_id, ts, value) SELECT %s, to_timestamp(t), v"
            " FROM unnest(%s::float8[], %s::float8[]) AS x(t, v)",
            (sid, ts, [1000.0 + k for k in range(97)]),
        )
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
            " VALUES (%s, to_timestamp(%s), to_timestamp(%s))",
            (sid, ts[0], ts[-1]),
        )
    refresh_usage(conn, utc(2026, 3, 12))
    body = client.get(
        f"/portal/consumption/meters/{sid}",
        params={"from": "2026-03-09T18:15Z", "to": "2026-03-11T18:15Z", "resolution": "1d"},
        headers=acct.auth,
    ).json()
    assert [b["start"] for b in body["buckets"]] == [
        "2026-03-09T18:15:00+00:00",
        "2026-03-10T18:15:00+00:00",
    ]
    assert [round(b["quantity"], 9) for b in body["buckets"]] == [96.0, 0.0]
    assert body["buckets"][0]["coverage"] == 1.0
    assert body["estimated_share"] == 0.0
