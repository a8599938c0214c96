"""Fixtures of the usage tests: a migrated database and a helper that ingests like helper B does."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from collector.storage.migrate import migrate


@pytest.fixture
def usage_conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to a fresh database with the whole Tally schema."""
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def new_series(conn: psycopg.Connection[Any], kind: str = "cumulative", meter: str = "m1") -> int:
    """Create a series and return its id."""
    row = conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " VALUES ('dev-1', %s, 'energy', 'kWh', %s) RETURNING series_id",
        (meter, kind),
    ).fetchone()
    assert row is not None
    return int(row[0])


def ingest(
    conn: psycopg.Connection[Any], series_id: int, ts: Sequence[float], values: Sequence[float]
) -> None:
    """Insert readings and their usage_dirty row in one transaction (the ingest contract)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO readings (series_id, ts, value)"
            " SELECT %s, to_timestamp(t), v FROM unnest(%s::float8[], %s::float8[]) AS x(t, v)",
            (series_id, list(ts), list(values)),
        )
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
            " VALUES (%s, to_timestamp(%s), to_timestamp(%s))",
            (series_id, min(ts), max(ts)),
        )
