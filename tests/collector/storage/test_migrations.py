"""Schema migrations 0001/0002 on the real PostgreSQL (plain flavour)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from collector.storage.migrate import migrate


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {
            r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }


def test_schema_contract_tables_exist(pg_url: str) -> None:
    """Migrating creates every table of the schema contract."""
    migrate(pg_url, use_timescale=False)
    assert {"series", "readings", "batches", "dead_letters", "usage_dirty",
            "device_status"} <= _tables(pg_url)


def test_migrating_twice_is_a_no_op(pg_url: str) -> None:
    """A second migrate applies nothing."""
    migrate(pg_url, use_timescale=False)
    assert migrate(pg_url, use_timescale=False) == []


def test_plain_readings_are_partitioned_monthly_with_default(pg_url: str) -> None:
    """readings is range-partitioned with a DEFAULT partition and the current month's partition."""
    migrate(pg_url, use_timescale=False)
    month = datetime.now(UTC).strftime("%Y%m")
    with psycopg.connect(pg_url) as conn:
        parts = {
            r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'readings'::regclass"
            )
        }
        strategy = conn.execute(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'readings'::regclass"
        ).fetchone()
    assert strategy == ("r",)
    assert "readings_default" in parts
    assert f"readings_p{month}" in parts


def test_new_partition_takes_rows_from_default(pg_url: str) -> None:
    """Creating a month's partition moves that month's rows out of the DEFAULT partition."""
    migrate(pg_url, use_timescale=False)
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO readings VALUES (1, '2031-03-05T00:00:00Z', 1.5),"
            " (1, '2031-04-05T00:00:00Z', 2.5)"
        )
        created = conn.execute(
            "SELECT tally_ensure_reading_partitions('2031-03-01T00:00:00Z', 1)"
        ).fetchone()
        where = conn.execute(
            "SELECT tableoid::regclass::text, value FROM readings ORDER BY ts"
        ).fetchall()
    assert created == (1,)
    assert where == [("readings_p203103", 1.5), ("readings_default", 2.5)]


def test_readings_index_on_series_and_time(pg_url: str) -> None:
    """readings has an index on (series_id, ts)."""
    migrate(pg_url, use_timescale=False)
    with psycopg.connect(pg_url) as conn:
        defs = [r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'readings'"
        )]
    assert any("(series_id, ts)" in d for d in defs)
