"""The TimescaleDB flavour of the schema: every migration applies, and the TimescaleDB objects
(hypertables, compression, its policy, continuous aggregates) are really there."""

from __future__ import annotations

import psycopg
import pytest

from collector.storage.migrate import available_migrations, migrate

from .scenario import insert_readings, new_series, utc


def _all_versions() -> list[str]:
    return sorted({f"{m.version:04d}_{m.name}" for m in available_migrations()})


def test_every_migration_applies_with_the_timescale_flavour(timescale_db: str) -> None:
    """migrate() applies all ingest, usage and billing migrations, timescale files where paired."""
    assert migrate(timescale_db, use_timescale=True) == _all_versions()
    paired = {m.version for m in available_migrations() if m.flavour}
    with psycopg.connect(timescale_db) as conn:
        rows = conn.execute("SELECT version, flavour FROM tally_schema_migrations").fetchall()
    assert {v for v, f in rows if f == "timescale"} == paired
    assert not [v for v, f in rows if f == "plain"]


def test_migrating_again_is_a_no_op(timescale_db: str) -> None:
    """A second migrate() applies nothing and changes no migration record."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db) as conn:
        before = conn.execute("SELECT * FROM tally_schema_migrations ORDER BY version").fetchall()
    assert migrate(timescale_db, use_timescale=True) == []
    with psycopg.connect(timescale_db) as conn:
        after = conn.execute("SELECT * FROM tally_schema_migrations ORDER BY version").fetchall()
    assert after == before


def test_autodetection_picks_the_timescale_flavour(timescale_db: str) -> None:
    """Without use_timescale, a server offering the extension gets the timescale files."""
    migrate(timescale_db)
    with psycopg.connect(timescale_db) as conn:
        flavours = conn.execute(
            "SELECT DISTINCT flavour FROM tally_schema_migrations WHERE flavour IS NOT NULL"
        ).fetchall()
    assert flavours == [("timescale",)]


def test_readings_and_usage_are_hypertables(timescale_db: str) -> None:
    """readings and usage_15m (30-day chunks both) are hypertables on their time."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db) as conn:
        tables = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = 'public' ORDER BY 1"
        ).fetchall()
        dims = conn.execute(
            "SELECT hypertable_name, column_name, time_interval"
            " FROM timescaledb_information.dimensions WHERE hypertable_schema = 'public'"
            " ORDER BY hypertable_name"
        ).fetchall()
    assert tables == [("readings",), ("usage_15m",)]
    assert [(t, c, i.days) for t, c, i in dims] == [
        ("readings", "ts", 30), ("usage_15m", "bucket", 30)
    ]


def test_readings_compression_is_segmented_by_series(timescale_db: str) -> None:
    """readings compress segmented by series_id and ordered by ts; usage_15m does not compress."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db) as conn:
        settings = conn.execute(
            "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index"
            " FROM timescaledb_information.compression_settings ORDER BY 1, 2"
        ).fetchall()
        enabled: dict[str, bool] = dict(conn.execute(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = 'public'"
        ).fetchall())
    assert settings == [("readings", "series_id", 1, None), ("readings", "ts", None, 1)]
    assert enabled == {"readings": True, "usage_15m": False}


def test_compression_policy_compresses_readings_after_a_week(timescale_db: str) -> None:
    """A policy_compression job exists for readings with compress_after 7 days."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db) as conn:
        jobs = conn.execute(
            "SELECT hypertable_name, config->>'compress_after', scheduled"
            " FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
        ).fetchall()
    assert jobs == [("readings", "7 days", True)]


def test_usage_rollups_are_real_time_continuous_aggregates(timescale_db: str) -> None:
    """usage_1h and usage_1d are continuous aggregates over usage_15m, not materialized-only."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db) as conn:
        caggs = conn.execute(
            "SELECT view_name, hypertable_name, materialized_only"
            " FROM timescaledb_information.continuous_aggregates ORDER BY view_name"
        ).fetchall()
    assert caggs == [("usage_1d", "usage_15m", False), ("usage_1h", "usage_15m", False)]


def test_partition_function_is_a_no_op(timescale_db: str) -> None:
    """tally_ensure_reading_partitions exists (same interface as plain PG) and creates nothing."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db) as conn:
        made = conn.execute(
            "SELECT tally_ensure_reading_partitions(now(), 3)"
        ).fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'readings_p%'"
        ).fetchone()
    assert (made, tables) == ((0,), (0,))


def test_an_existing_database_keeps_its_daily_chunks_and_gets_30_day_ones(
    timescale_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0005 on a database migrated before it: chunks that exist keep their day, new chunks span
    30 days (cut where they would overlap a daily one), and every reading is read back."""
    import collector.storage.migrate as migrate_module  # noqa: PLC0415

    shipped = available_migrations()
    monkeypatch.setattr(migrate_module, "available_migrations",
                        lambda: [m for m in shipped if m.version != 5])
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        sid = new_series(conn)
        insert_readings(conn, sid, [utc(2026, 1, d, 12).timestamp() for d in (1, 2, 3)],
                        [1.0, 2.0, 3.0])
    monkeypatch.undo()
    assert migrate(timescale_db, use_timescale=True) == ["0005_readings_chunk_interval"]
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        insert_readings(conn, sid, [utc(2026, 1, 5, 12).timestamp(),
                                    utc(2026, 1, 20, 12).timestamp()], [5.0, 20.0])
        chunks = conn.execute(
            "SELECT range_start, range_end FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'readings' ORDER BY range_start").fetchall()
        values = [r[0] for r in conn.execute("SELECT value FROM readings ORDER BY ts")]
    assert chunks == [
        (utc(2026, 1, 1), utc(2026, 1, 2)), (utc(2026, 1, 2), utc(2026, 1, 3)),
        (utc(2026, 1, 3), utc(2026, 1, 4)), (utc(2026, 1, 4), utc(2026, 1, 7)),
        (utc(2026, 1, 7), utc(2026, 2, 6)),
    ]
    assert values == [1.0, 2.0, 3.0, 5.0, 20.0]
