"""The ingest API's read queries (device status, sequence gaps, raw readings, dead letters) on
the TimescaleDB schema, through a one-connection pool (the sandbox allows one connection)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from collector.storage import ingest_queries as q
from collector.storage.database import Pool, open_pool
from collector.storage.migrate import migrate

from .scenario import insert_readings, new_series, utc

Conn = psycopg.Connection[Any]
T0 = utc(2026, 5, 4, 12)
SEQS = [1, 2, 5, 9]


def _ingest_like_the_collector(conn: Conn) -> None:
    """Batches 1, 2, 5, 9 of dev-a (ten readings each, of two metrics), a status of dev-s, and
    three dead letters, written with plain INSERTs the way the ingest store leaves them."""
    energy = new_series(conn, device="dev-a", meter="m0", metric="energy")
    power = new_series(conn, "gauge", device="dev-a", meter="m0", metric="power")
    for seq in SEQS:
        ts = [(T0 + timedelta(minutes=10 * seq + k)).timestamp() for k in range(5)]
        insert_readings(conn, energy, ts, [seq + k / 10 for k in range(5)])
        insert_readings(conn, power, ts, [100.0 * seq + k for k in range(5)])
        conn.execute(
            "INSERT INTO batches (device_id, seq, received_at, reading_count)"
            " VALUES ('dev-a', %s, %s, 10)", (seq, T0 + timedelta(minutes=10 * seq + 5)))
    conn.execute(
        "INSERT INTO device_ingest (device_id, batches, readings, first_seq, last_seq, last_seen)"
        " VALUES ('dev-a', %s, %s, %s, %s, %s)",
        (len(SEQS), 10 * len(SEQS), min(SEQS), max(SEQS), T0 + timedelta(hours=2)),
    )
    conn.execute(
        "INSERT INTO device_status (device_id, received_at, state, buffer_depth, payload)"
        " VALUES ('dev-s', %s, 'online', 2, %s)", (T0, Jsonb({"state": "online"})))
    for i in range(3):
        conn.execute(
            "INSERT INTO dead_letters (received_at, topic, payload, reason, field)"
            " VALUES (%s, 't', %s, %s, NULL)", (T0, bytes([i]), f"r{i}"))


@pytest.fixture
def pool(timescale_db: str) -> Iterator[Pool]:
    """A one-connection pool on the TimescaleDB schema holding the ingest data above."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        _ingest_like_the_collector(conn)
    p = open_pool(timescale_db, min_size=1, max_size=1)
    p.wait(timeout=15)
    yield p
    p.close()


def test_device_ingest_reports_sequence_gaps(pool: Pool) -> None:
    """Seqs 1, 2, 5, 9 give gaps 3-4 and 6-8, five missing batches, two series."""
    d = q.device_ingest(pool, "dev-a")
    assert d is not None
    assert [(g.first, g.last) for g in d.gaps] == [(3, 4), (6, 8)]
    assert (d.batches, d.readings, d.first_seq, d.last_seq, d.missing_batches, d.series) == (
        4, 40, 1, 9, 5, 2
    )


def test_device_list_joins_ingest_counters_and_statuses(pool: Pool) -> None:
    """list_devices shows the device with batches and the one known only by its status."""
    devices = q.list_devices(pool)
    assert [(d.device_id, d.batches, d.status.state if d.status else None) for d in devices] == [
        ("dev-a", 4, None), ("dev-s", 0, "online")
    ]
    status = q.device_ingest(pool, "dev-s")
    assert status is not None
    assert status.status is not None
    assert (status.status.buffer_depth, status.status.document) == (2, {"state": "online"})


def test_raw_readings_come_from_the_hypertable(pool: Pool) -> None:
    """meter_readings returns one metric's readings in [from, to), in time order."""
    rows = q.meter_readings(pool, "dev-a", "m0", metric="power", ts_from=T0 + timedelta(
        minutes=21), ts_to=T0 + timedelta(minutes=52), limit=100)
    assert [(r.ts, r.value, r.unit) for r in rows] == [
        (T0 + timedelta(minutes=21), 201.0, "kWh"), (T0 + timedelta(minutes=22), 202.0, "kWh"),
        (T0 + timedelta(minutes=23), 203.0, "kWh"), (T0 + timedelta(minutes=24), 204.0, "kWh"),
        (T0 + timedelta(minutes=50), 500.0, "kWh"), (T0 + timedelta(minutes=51), 501.0, "kWh"),
    ]


def test_raw_readings_of_all_metrics_are_ordered_by_metric(pool: Pool) -> None:
    """Without a metric filter, energy rows come before power rows, each in time order."""
    rows = q.meter_readings(pool, "dev-a", "m0", metric=None, ts_from=T0,
                            ts_to=T0 + timedelta(hours=3), limit=1000)
    assert [r.metric for r in rows] == ["energy"] * 20 + ["power"] * 20
    assert [r.ts for r in rows[:20]] == sorted(r.ts for r in rows[:20])


def test_dead_letters_page_newest_first(pool: Pool) -> None:
    """Dead letters come newest first and page with before_id."""
    first = q.dead_letters(pool, limit=2)
    second = q.dead_letters(pool, limit=2, before_id=first[-1].id)
    assert [r.reason for r in first + second] == ["r2", "r1", "r0"]
    assert [r.payload for r in first] == [b"\x02", b"\x01"]
