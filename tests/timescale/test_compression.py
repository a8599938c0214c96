"""Native compression of readings chunks (segmented by series): compressed history reads back
identically, also through the ingest API's raw-readings query, and still takes late readings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from collector.storage import ingest_queries
from collector.storage.database import open_pool
from collector.storage.migrate import migrate

from .scenario import insert_readings, new_series, utc

Conn = psycopg.Connection[Any]
START = utc(2026, 2, 1)
DAYS = 10
CUTOFF = utc(2026, 2, 6)  # a boundary of the 30-day chunks: the chunk ending here gets compressed


def _all_readings(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT series_id, ts, value FROM readings ORDER BY 1, 2").fetchall()


def _compress_old_chunks(conn: Conn) -> int:
    rows = conn.execute(
        "SELECT compress_chunk(c) FROM show_chunks('readings', older_than => %s) AS c", (CUTOFF,)
    ).fetchall()
    return len(rows)


def _compressed(conn: Conn) -> list[tuple[datetime, bool]]:
    return conn.execute(
        "SELECT range_start, is_compressed FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'readings' ORDER BY range_start"
    ).fetchall()


@pytest.fixture
def history(timescale_db: str) -> str:
    """Ten days of quarter-hourly readings of two series on the TimescaleDB schema."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        t0 = START.timestamp()
        ts = [t0 + 900 * k for k in range(96 * DAYS)]
        for n in range(2):
            sid = new_series(conn, meter=f"m{n}")
            insert_readings(conn, sid, ts, [k * 0.25 + n * 1000 + 0.125 for k in range(len(ts))])
    return timescale_db


def test_old_chunks_compress_and_read_back_identically(history: str) -> None:
    """compress_chunk on the chunk that ended at the cutoff keeps every reading unchanged."""
    with psycopg.connect(history, autocommit=True) as conn:
        before = _all_readings(conn)
        assert _compress_old_chunks(conn) == 1
        chunks = _compressed(conn)
        after = _all_readings(conn)
    assert [c for _, c in chunks] == [True, False]
    assert [s for s, _ in chunks][1] == CUTOFF
    assert len(before) == 2 * 96 * DAYS
    assert after == before


def test_raw_readings_query_spans_compressed_and_plain_chunks(history: str) -> None:
    """meter_readings returns the same rows across the compression boundary after compressing."""
    window = {"ts_from": CUTOFF - timedelta(hours=3), "ts_to": CUTOFF + timedelta(hours=2)}

    def read() -> list[ingest_queries.ReadingRow]:
        pool = open_pool(history, min_size=1, max_size=1)
        try:
            pool.wait(timeout=15)
            return ingest_queries.meter_readings(
                pool, "dev-1", "m1", metric="energy", limit=1000, **window
            )
        finally:
            pool.close()

    before = read()
    with psycopg.connect(history, autocommit=True) as conn:
        _compress_old_chunks(conn)
    after = read()
    assert len(before) == 20
    assert after == before
    assert before[0].value == pytest.approx(1000 + 0.125 + 0.25 * (96 * 5 - 12))


def test_late_reading_lands_in_a_compressed_chunk(history: str) -> None:
    """A weeks-late reading inserted into a compressed day is stored and read back in order."""
    late = START + timedelta(days=2, minutes=7)
    with psycopg.connect(history, autocommit=True) as conn:
        _compress_old_chunks(conn)
        row = conn.execute("SELECT series_id FROM series WHERE meter = 'm0'").fetchone()
        assert row is not None
        sid = int(row[0])
        insert_readings(conn, sid, [late.timestamp()], [42.0])
        rows = conn.execute(
            "SELECT ts, value FROM readings WHERE series_id = %s AND ts >= %s AND ts < %s"
            " ORDER BY ts",
            (sid, late - timedelta(minutes=7), late + timedelta(minutes=10)),
        ).fetchall()
        compressed = [c for _, c in _compressed(conn)]
    assert [(t, v) for t, v in rows][1] == (late, 42.0)
    assert len(rows) == 3
    assert compressed == [True, False]
