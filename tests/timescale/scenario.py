"""Data helpers of the TimescaleDB tests: plain INSERTs only (the sandbox has no COPY), and
in slices: the sandbox dies on a protocol message larger than 64 KiB."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]
SLICE = 500  # rows per INSERT: about 20 kB of text parameters per statement here

USAGE_COLUMNS = (
    "series_id, bucket, quantity, estimated, quarantined, coverage, reading_count, flags, peak"
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def new_series(conn: Conn, kind: str = "cumulative", meter: str = "m1",
               device: str = "dev-1", metric: str = "energy") -> int:
    """Create a series and return its id."""
    row = conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " VALUES (%s, %s, %s, 'kWh', %s) RETURNING series_id",
        (device, meter, metric, kind),
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_readings(conn: Conn, series_id: int, ts: Sequence[float],
                    values: Sequence[float]) -> None:
    """Readings (Unix seconds, value) and their usage_dirty row, in one transaction."""
    with conn.transaction():
        for i in range(0, len(ts), SLICE):
            conn.execute(
                "INSERT INTO readings (series_id, ts, value) SELECT %s, to_timestamp(t), v"
                " FROM unnest(%s::float8[], %s::float8[]) AS x(t, v)",
                (series_id, list(ts[i : i + SLICE]), list(values[i : i + SLICE])),
            )
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
            " VALUES (%s, to_timestamp(%s), to_timestamp(%s))",
            (series_id, min(ts), max(ts)),
        )


def usage_rows(conn: Conn) -> list[tuple[Any, ...]]:
    """Every usage_15m row (without updated_at), in key order."""
    return conn.execute(
        f"SELECT {USAGE_COLUMNS} FROM usage_15m ORDER BY series_id, bucket"
    ).fetchall()


def insert_usage(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """Upsert usage_15m rows (as :func:`usage_rows` returns them)."""
    for i in range(0, len(rows), SLICE // 4):
        _insert_usage_slice(conn, rows[i : i + SLICE // 4])


def _insert_usage_slice(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    cols = list(zip(*rows, strict=True))
    conn.execute(
        f"INSERT INTO usage_15m ({USAGE_COLUMNS})"
        " SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[],"
        "  %s::float8[], %s::float8[], %s::int[], %s::int[], %s::float8[])"
        " ON CONFLICT (series_id, bucket) DO UPDATE SET quantity = excluded.quantity,"
        "  estimated = excluded.estimated, quarantined = excluded.quarantined,"
        "  coverage = excluded.coverage, reading_count = excluded.reading_count,"
        "  flags = excluded.flags, peak = excluded.peak",
        [list(c) for c in cols],
    )


def mark_rollups_pending(conn: Conn, ts_from: datetime, ts_to: datetime) -> None:
    """Queue a changed usage_15m range the way refresh_usage does on TimescaleDB."""
    conn.execute(
        "INSERT INTO usage_rollup_pending (ts_from, ts_to) VALUES (%s, %s)", (ts_from, ts_to)
    )


def usage_daily_rows(conn: Conn) -> list[tuple[Any, ...]]:
    """Every usage_15m_daily row (without updated_at), in key order."""
    return conn.execute(
        "SELECT series_id, day, quantity, estimated, reading_count FROM usage_15m_daily"
        " ORDER BY series_id, day"
    ).fetchall()


def insert_usage_daily(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert usage_15m_daily rows (as :func:`usage_daily_rows` returns them), 1.9 kB each."""
    for i in range(0, len(rows), 8):
        cols = list(zip(*rows[i : i + 8], strict=True))
        conn.execute(
            "INSERT INTO usage_15m_daily (series_id, day, quantity, estimated, reading_count)"
            " SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::bytea[], %s::bytea[],"
            "  %s::bytea[])",
            [list(c) for c in cols],
        )
