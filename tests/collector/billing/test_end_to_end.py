"""A month of simulated meter readings → usage (helper D's refresh) → close → finalize; every
invoice total equals the reference rating (helper C's obviously-correct Decimal implementation)
of the same usage, to the cent."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import psycopg_pool

from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.money import compute_totals
from collector.billing.periods import PeriodKey, period_for
from collector.rating import parse_plan
from collector.rating.reference import MeterReadings, Period, rate_subscription
from collector.storage import billing_invoice_store as invoices
from collector.storage.usage_store import refresh_usage
from tests.collector.billing.conftest import make_series, spec, utc

TOU_PLAN: dict[str, Any] = {
    "format": "tally.plan/v1",
    "id": "tou",
    "version": 1,
    "currency": "EUR",
    "time_zone": "Europe/Amsterdam",
    "schedule": {
        "seasons": {
            "all": {
                "months": list(range(1, 13)),
                "weekday": {"0-7": "offpeak", "7-23": "peak", "23-24": "offpeak"},
                "weekend": {"0-24": "offpeak"},
            }
        }
    },
    "charges": [
        {
            "type": "time_of_use",
            "id": "energy",
            "unit": "kWh",
            "periods": {
                "peak": {"price": "0.3125"},
                "offpeak": {
                    "tiers": [
                        {"from": "0", "to": "100", "price": "0.1"},
                        {"from": "100", "price": "0.0875"},
                    ]
                },
            },
        },
        {"type": "demand", "id": "demand", "unit": "kW", "price": "4.37"},
        {"type": "recurring", "id": "standing", "amount": "12.50"},
    ],
}
ZONES = ["Europe/Amsterdam", "Pacific/Auckland", "Pacific/Kiritimati", "America/New_York"]


def _insert_readings(conn: psycopg.Connection[Any], sid: int, rng: np.random.Generator) -> None:
    """Cumulative kWh register every 15 minutes from 26 Feb to 3 Apr, with a 2-hour gap."""
    start = utc(2026, 2, 26)
    n = 36 * 96
    ts = [start + timedelta(minutes=15 * i) for i in range(n)]
    steps = rng.uniform(0.05, 0.9, n).round(3)
    values = 1000 + np.cumsum(steps)
    keep = [i for i in range(n) if not 500 <= i < 508]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (series_id, ts, value) VALUES (%s, %s, %s)",
            [(sid, ts[i], float(values[i])) for i in keep],
        )
    conn.execute(
        "INSERT INTO usage_dirty (series_id, ts_from, ts_to) VALUES (%s, %s, %s)",
        (sid, ts[0], ts[-1]),
    )


def _reference_total(
    conn: psycopg.Connection[Any], customer_id: int, sid: int, tz: str, tax: Decimal
) -> Decimal:
    period = period_for(PeriodKey(2026, 3), tz)
    rows = conn.execute(
        "SELECT extract(epoch FROM bucket)::bigint, quantity FROM usage_15m WHERE series_id = %s"
        " AND bucket >= %s AND bucket < %s ORDER BY bucket",
        (sid, period.start, period.end),
    ).fetchall()
    s, e = int(period.start.timestamp()), int(period.end.timestamp())
    lines = rate_subscription(
        parse_plan(TOU_PLAN),
        Period(s, e, s, e),
        {"default": MeterReadings("kWh", 900, [(int(b), float(q)) for b, q in rows])},
    )
    return compute_totals([(li.amount_unrounded, li.amount) for li in lines], tax, "EUR").total


def test_month_of_readings_bills_exactly_the_reference_rating(
    conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """Four customers in four zones: final invoice totals equal the reference to the cent."""
    rng = np.random.default_rng(7)
    _, v = accounts.create_plan(conn, "tou", "TOU", TOU_PLAN)
    meters: dict[int, tuple[int, str]] = {}
    for i, tz in enumerate(ZONES):
        c = accounts.create_customer(conn, spec(f"C{i}", tz=tz))
        sid = make_series(conn, f"meter-{i}")
        accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2025, 12, 1))
        _insert_readings(conn, sid, rng)
        meters[c.customer_id] = (sid, tz)
    now = datetime(2026, 4, 10, tzinfo=UTC)
    while refresh_usage(conn, now).dirty_rows:
        pass
    close_period(pool, PeriodKey(2026, 3), now)
    finalize_period(pool, PeriodKey(2026, 3), now)
    got: dict[int, Decimal] = defaultdict(Decimal)
    for inv in invoices.list_invoices(conn, period="2026-03").items:
        assert inv.number is not None
        got[inv.customer_id] = inv.total
    expected = {
        cid: _reference_total(conn, cid, sid, tz, Decimal("0.21"))
        for cid, (sid, tz) in meters.items()
    }
    assert got == expected
    assert all(t > Decimal(100) for t in got.values())
