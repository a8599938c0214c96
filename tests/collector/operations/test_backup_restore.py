"""Backup and restore as docs/operations.md describes it: pg_dump -Fc, pg_restore into a new
database, and the collector carries on there (migrate is a no-op, usage and ingest state equal)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from collector.storage.migrate import migrate
from collector.storage.usage_backfill import backfill_usage

TABLES = ("series", "readings", "batches", "usage_15m", "usage_15m_daily",
          "tally_schema_migrations")


def _db_url(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, f"/{name}", p.query, p.fragment))


def _content(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in TABLES}


def test_pg_dump_and_pg_restore_give_back_every_table(pg_url: str, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.fail("pg_dump/pg_restore are needed (Debian: postgresql-client)")
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        sid = conn.execute(
            "INSERT INTO series (device_id, meter, metric, unit, kind)"
            " VALUES ('dev-b', 'main', 'energy', 'kWh', 'cumulative') RETURNING series_id"
        ).fetchone()
        assert sid is not None
        conn.execute("INSERT INTO batches (device_id, seq, reading_count)"
                     " VALUES ('dev-b', 1, 3000)")
        conn.execute(
            "INSERT INTO readings (series_id, ts, value) SELECT %s,"
            " timestamptz '2026-03-01' + g * interval '1 minute', g * 0.01"
            " FROM generate_series(0, 2999) g", (sid[0],))
        backfill_usage(conn, datetime(2026, 4, 1, tzinfo=UTC),
                       datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    before = _content(pg_url)
    assert len(before["readings"]) == 3000
    assert len(before["usage_15m"]) == 200

    dump = tmp_path / "tally.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", pg_url], check=True)
    restored = f"tally_r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{restored}"')
    url = _db_url(pg_url, restored)
    try:
        subprocess.run(["pg_restore", "--exit-on-error", "--no-owner", f"--dbname={url}",
                        str(dump)], check=True)
        assert _content(url) == before
        assert migrate(url) == []  # the restored schema is complete: nothing to apply
        with psycopg.connect(url) as conn:  # partitions and their function came back too
            row = conn.execute("SELECT tally_ensure_reading_partitions(now(), 1)").fetchone()
            assert row is not None
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
