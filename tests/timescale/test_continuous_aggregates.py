"""The hourly and daily continuous aggregates follow usage_15m: weeks-late changes reach them
through the ranges the usage store queues (usage_rollup_pending) and refresh_rollups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from collector.storage.migrate import migrate
from collector.storage.usage_queries import usage_for_series
from collector.storage.usage_store import refresh_rollups

from .scenario import insert_usage, mark_rollups_pending, new_series, utc

Conn = psycopg.Connection[Any]
JAN = utc(2026, 1, 5)
MAR = utc(2026, 3, 20)
LATE = JAN + timedelta(hours=10)  # the bucket that changes seven weeks later


def _day(sid: int, day: datetime, quantity: float) -> list[tuple[Any, ...]]:
    """96 quarter hours of ``quantity`` each, one reading each."""
    return [
        (sid, day + timedelta(minutes=15 * k), quantity, 0.0, 0.0, 1.0, 1, 0, None)
        for k in range(96)
    ]


def _rollup(conn: Conn, view: str, sid: int, bucket: datetime) -> tuple[float, int] | None:
    row = conn.execute(
        f"SELECT quantity, reading_count FROM {view} WHERE series_id = %s AND bucket = %s",
        (sid, bucket),
    ).fetchone()
    return None if row is None else (float(row[0]), int(row[1]))


@pytest.fixture
def rolled_up(timescale_db: str) -> Iterator[tuple[Conn, int]]:
    """Two UTC days of 0.5 per quarter hour, in January and in March, refreshed into the rollups
    (the refresh watermark is then in March)."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        sid = new_series(conn)
        insert_usage(conn, _day(sid, JAN, 0.5) + _day(sid, MAR, 0.5))
        mark_rollups_pending(conn, JAN, MAR + timedelta(hours=23))
        assert refresh_rollups(conn) == 1
        yield conn, sid


def test_refresh_materializes_both_rollups(rolled_up: tuple[Conn, int]) -> None:
    """After refresh_rollups the pending range is consumed and hours/days hold the sums."""
    conn, sid = rolled_up
    assert conn.execute("SELECT count(*) FROM usage_rollup_pending").fetchone() == (0,)
    conn.execute("ALTER MATERIALIZED VIEW usage_1h SET (timescaledb.materialized_only = true)")
    conn.execute("ALTER MATERIALIZED VIEW usage_1d SET (timescaledb.materialized_only = true)")
    assert _rollup(conn, "usage_1h", sid, LATE) == (2.0, 4)
    assert _rollup(conn, "usage_1d", sid, JAN) == (48.0, 96)
    assert _rollup(conn, "usage_1d", sid, MAR) == (48.0, 96)


def test_weeks_late_change_is_stale_until_refreshed(rolled_up: tuple[Conn, int]) -> None:
    """A January bucket rewritten in March stays old in the rollups until its range is refreshed
    (real-time aggregation only covers data above the watermark)."""
    conn, sid = rolled_up
    insert_usage(conn, [(sid, LATE, 6.5, 0.0, 0.0, 1.0, 3, 0, None)])
    assert _rollup(conn, "usage_1h", sid, LATE) == (2.0, 4)
    assert _rollup(conn, "usage_1d", sid, JAN) == (48.0, 96)


def test_weeks_late_change_reaches_hourly_and_daily_rollups(rolled_up: tuple[Conn, int]) -> None:
    """Queuing the changed range (as refresh_usage does) and refreshing updates hour and day."""
    conn, sid = rolled_up
    insert_usage(conn, [(sid, LATE, 6.5, 0.0, 0.0, 1.0, 3, 0, None)])
    mark_rollups_pending(conn, LATE, LATE + timedelta(minutes=15))
    assert refresh_rollups(conn) == 1
    assert _rollup(conn, "usage_1h", sid, LATE) == (8.0, 6)
    assert _rollup(conn, "usage_1d", sid, JAN) == (54.0, 98)
    hours = usage_for_series(conn, [sid], LATE, LATE + timedelta(hours=1), resolution="1h")
    days = usage_for_series(conn, [sid], JAN, JAN + timedelta(days=1), resolution="1d")
    assert (hours.quantity.tolist(), days.quantity.tolist()) == ([[8.0]], [[54.0]])
    assert (hours.reading_count.tolist(), days.reading_count.tolist()) == ([[6]], [[98]])


def test_new_usage_above_the_watermark_is_read_in_real_time(rolled_up: tuple[Conn, int]) -> None:
    """Usage newer than the last refresh is in the rollups before any refresh."""
    conn, sid = rolled_up
    april = utc(2026, 4, 2)
    insert_usage(conn, _day(sid, april, 0.25))
    assert _rollup(conn, "usage_1h", sid, april) == (1.0, 4)
    assert _rollup(conn, "usage_1d", sid, april) == (24.0, 96)
