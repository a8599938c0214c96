"""Billing test fixtures: a migrated database, series, usage rows, plans and customers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest

from collector.billing.model import Address, CustomerSpec
from collector.storage.migrate import migrate
from collector.storage.usage_fleet import resum_fleet

PER_UNIT_PLAN: dict[str, Any] = {
    "format": "tally.plan/v1",
    "id": "basic",
    "version": 1,
    "currency": "EUR",
    "charges": [
        {"type": "per_unit", "id": "energy", "unit": "kWh", "price": "0.25"},
        {"type": "recurring", "id": "standing", "amount": "10.00"},
    ],
}


def plan_doc(
    price: str = "0.25", standing: str = "10.00", currency: str = "EUR", plan_id: str = "basic"
) -> dict[str, Any]:
    return {
        "format": "tally.plan/v1",
        "id": plan_id,
        "version": 1,
        "currency": currency,
        "charges": [
            {"type": "per_unit", "id": "energy", "unit": "kWh", "price": price},
            {"type": "recurring", "id": "standing", "amount": standing},
        ],
    }


def spec(
    name: str = "Acme BV",
    tz: str = "Europe/Amsterdam",
    tax: str = "0.21",
    currency: str = "EUR",
    issuer: str = "tally-nl",
) -> CustomerSpec:
    return CustomerSpec(
        name=name,
        address=Address("Damrak 1", "Amsterdam", "NL", "1012 LG"),
        currency=currency,
        time_zone=tz,
        tax_rate=Decimal(tax),
        issuer=issuer,
    )


@pytest.fixture
def db(pg_url: str) -> str:
    """A fresh database with every migration applied."""
    migrate(pg_url)
    return pg_url


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the migrated test database."""
    with psycopg.connect(db, autocommit=True) as c:
        yield c


@pytest.fixture
def pool(db: str) -> Iterator[psycopg_pool.ConnectionPool[Any]]:
    """A small connection pool on the migrated test database."""
    p: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
        db, min_size=1, max_size=4, open=True
    )
    yield p
    p.close()


def make_series(conn: psycopg.Connection[Any], device: str, unit: str = "kWh") -> int:
    row = conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind) VALUES (%s, 'main', 'energy',"
        " %s, 'cumulative') RETURNING series_id",
        (device, unit),
    ).fetchone()
    assert row is not None
    return int(row[0])


def put_usage(
    conn: psycopg.Connection[Any],
    series_id: int,
    start: datetime,
    end: datetime,
    per_interval: float,
    *,
    estimated: float = 0.0,
    readings: int = 1,
    updated_at: datetime | None = None,
) -> int:
    """Write one usage_15m row per 15 minutes in [start, end); returns the row count."""
    t = start
    rows: list[Sequence[Any]] = []
    while t < end:
        rows.append((series_id, t, per_interval, estimated, readings, updated_at or t))
        t += timedelta(minutes=15)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO usage_15m (series_id, bucket, quantity, estimated, reading_count,"
            " updated_at) VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (series_id, bucket) DO UPDATE"
            " SET quantity = EXCLUDED.quantity, estimated = EXCLUDED.estimated,"
            " reading_count = EXCLUDED.reading_count, updated_at = EXCLUDED.updated_at",
            rows,
        )
    pack_daily(conn, series_id, start, end)
    resum_fleet(conn, start, end)  # the fleet rollup, as the usage engine keeps it
    return len(rows)


def pack_daily(
    conn: psycopg.Connection[Any], series_id: int, start: datetime, end: datetime
) -> None:
    """Re-pack the UTC days of [start, end) into usage_15m_daily, as the usage engine does."""
    conn.execute(
        "INSERT INTO usage_15m_daily (series_id, day, quantity, estimated, reading_count)"
        " SELECT %(s)s, d.day,"
        "  string_agg(float8send(coalesce(u.quantity, 0)), ''::bytea ORDER BY k),"
        "  string_agg(float8send(coalesce(u.estimated, 0)), ''::bytea ORDER BY k),"
        "  string_agg(int4send(coalesce(u.reading_count, 0)), ''::bytea ORDER BY k)"
        " FROM generate_series(date_trunc('day', %(a)s::timestamptz, 'UTC'),"
        "   %(b)s::timestamptz - interval '1 microsecond', interval '24 hours') AS d(day)"
        " CROSS JOIN generate_series(0, 95) AS k"
        " LEFT JOIN usage_15m u ON u.series_id = %(s)s"
        "  AND u.bucket = d.day + k * interval '15 minutes'"
        " GROUP BY d.day"
        " ON CONFLICT (series_id, day) DO UPDATE SET quantity = excluded.quantity,"
        "  estimated = excluded.estimated, reading_count = excluded.reading_count",
        {"s": series_id, "a": start, "b": end},
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
