"""Retention and archive: old monthly partitions go to Parquet, verified, then dropped; the
raw-readings API and the usage backfill read them as before; the file is compact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.api.app import create_app
from collector.cli import main as cli_main
from collector.operations.archive_codec import ArchiveRows, decode_block, encode_block, sort_rows
from collector.storage.archive_store import (
    archivable_partitions,
    archive_partition,
    archived_entries,
)
from collector.storage.copy_binary import encode_readings_copy
from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from collector.storage.usage_backfill import backfill_usage

NOW = datetime(2027, 3, 15, tzinfo=UTC)  # 400 days before: Jan 2026 is old, Feb not
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
Conn = psycopg.Connection[Any]


def _seed(conn: Conn, n_series: int = 20) -> list[int]:
    """A realistic month and a half of 15-minute cumulative registers (3 decimals, daily
    profile, a few seconds of jitter), 1 Jan .. mid Feb 2026."""
    conn.execute("SELECT tally_ensure_reading_partitions('2026-01-01', 3)")
    sids = [int(r[0]) for r in conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " SELECT 'arch-' || g, 'main', 'energy', 'kWh', 'cumulative'"
        " FROM generate_series(1, %s) g RETURNING series_id", (n_series,)).fetchall()]
    rng = np.random.default_rng(5)
    per = 46 * 96
    hours = (np.arange(per) % 96) / 4
    profile = 0.05 + 0.2 * np.exp(-((hours - 19) / 3) ** 2) + 0.1 * np.exp(-((hours - 8) / 2) ** 2)
    inc = np.round(profile[None, :] * rng.uniform(0.5, 1.5, (n_series, per)), 3)
    vals = (np.cumsum(inc, axis=1) + rng.uniform(1000, 50000, (n_series, 1))).round(3)
    t0_ms = int(JAN.timestamp() * 1000)
    ts = t0_ms + np.arange(per, dtype=np.int64) * 900_000
    ts_all = (ts[None, :] + rng.integers(0, 3, (n_series, per)) * 1000).ravel()
    sid = np.repeat(np.asarray(sids, dtype=np.int64), per)
    with conn.cursor() as cur, cur.copy(
        "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
    ) as cp:
        cp.write(encode_readings_copy(sid, ts_all, vals.ravel()))
    return sids


def _usage(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT series_id, bucket, quantity, reading_count FROM usage_15m"
                        " ORDER BY 1, 2").fetchall()


def _fleet(conn: Conn) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    rows = conn.execute("SELECT unit, bucket, reading_count, quantity FROM usage_fleet_15m"
                        " WHERE quantity <> 0 OR reading_count <> 0 ORDER BY 1, 2").fetchall()
    return [r[:3] for r in rows], np.asarray([r[3] for r in rows], dtype=np.float64)


def test_archive_exports_verifies_drops_and_reads_back_transparently(
    pg_url: str, tmp_path: Path
) -> None:
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        sids = _seed(conn)
        jan_rows = conn.execute("SELECT count(*) FROM readings_p202601").fetchone()
        assert jan_rows is not None
        backfill_usage(conn, NOW, JAN, FEB + timedelta(days=3))
        usage_before = _usage(conn)
        fleet_before = _fleet(conn)
        assert len(fleet_before[0]) > 3000  # 34 days of quarter hours
        parts = archivable_partitions(conn, NOW, timedelta(days=400))
        assert [p.name for p in parts] == ["readings_p202601"]  # Feb ended < 400 days ago

    pool = open_pool(pg_url, name="archive-test")
    try:
        pool.wait(10)
        client = TestClient(create_app(pool))
        url = "/devices/arch-3/meters/main/readings"
        span = {"from": "2026-01-31T20:00:00Z", "to": "2026-02-01T04:00:00Z",
                "metric": "energy"}
        before = client.get(url, params=span).json()
        assert len(before) == 32

        with psycopg.connect(pg_url, autocommit=True) as conn:
            entry = archive_partition(conn, parts[0], tmp_path / "archive")
            assert conn.execute("SELECT to_regclass('readings_p202601')").fetchone() == (None,)
            assert entry.readings == jan_rows[0] == 20 * 31 * 96
            assert entry.bytes_per_reading <= 4.0, entry
            assert Path(entry.path).exists()
            assert [e.partition for e in archived_entries(conn)] == ["readings_p202601"]
            left = conn.execute("SELECT count(*) FROM readings WHERE ts < %s", (FEB,)).fetchone()
            assert left == (0,)

        assert client.get(url, params=span).json() == before  # half archived, half live

        with psycopg.connect(pg_url, autocommit=True) as conn:  # re-derivation reads it too
            conn.execute("TRUNCATE usage_15m, usage_15m_daily, usage_fleet_15m")
            backfill_usage(conn, NOW, JAN, FEB + timedelta(days=3), series_ids=sids)
            assert _usage(conn) == usage_before
            keys, sums = _fleet(conn)  # the fleet rollup too
            assert keys == fleet_before[0]
            assert np.allclose(sums, fleet_before[1], rtol=1e-12, atol=1e-9)
    finally:
        pool.close()


def test_a_partition_with_a_draft_invoice_or_pending_refresh_is_kept(pg_url: str) -> None:
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        sids = _seed(conn, 2)
        conn.execute("INSERT INTO usage_dirty (series_id, ts_from, ts_to) VALUES (%s, %s, %s)",
                     (sids[0], JAN + timedelta(days=3), JAN + timedelta(days=4)))
        assert archivable_partitions(conn, NOW, timedelta(days=400)) == []
        assert archivable_partitions(conn, NOW, timedelta(days=10_000)) == []


def test_archive_command_dry_run_run_and_list(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _seed(conn, 3)
    monkeypatch.setenv("TALLY_DATABASE_URL", pg_url)
    days = str((datetime.now(UTC) - datetime(2026, 3, 1, tzinfo=UTC)).days - 1)  # Jan, Feb
    assert cli_main(["archive", "run", "--dir", str(tmp_path), "--older-than-days", days,
                     "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would archive readings_p202601" in out
    assert "would archive readings_p202602" in out
    assert cli_main(["archive", "run", "--dir", str(tmp_path), "--older-than-days", days]) == 0
    assert "archived readings_p202602" in capsys.readouterr().out
    assert cli_main(["archive", "list"]) == 0
    assert "B/reading" in capsys.readouterr().out
    assert cli_main(["archive", "run", "--dir", str(tmp_path), "--older-than-days", "0"]) == 2


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(-2**62, 2**62),
                          st.floats(allow_nan=True, allow_infinity=True)), max_size=200))
def test_codec_round_trips_bit_for_bit(rows: list[tuple[int, int, float]]) -> None:
    src = sort_rows(ArchiveRows(np.asarray([r[0] for r in rows], dtype=np.int64),
                                np.asarray([r[1] for r in rows], dtype=np.int64),
                                np.asarray([r[2] for r in rows], dtype=np.float64)))
    assert decode_block(encode_block(src)).equals(src)


def test_restore_attaches_the_month_again_with_late_rows_and_checks_the_file(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _seed(conn, 4)
        before = conn.execute("SELECT series_id, ts, value FROM readings WHERE ts < %s"
                              " ORDER BY 1, 2", (FEB,)).fetchall()
        part = archivable_partitions(conn, NOW, timedelta(days=400))[0]
        entry = archive_partition(conn, part, tmp_path)
        late = (int(before[0][0]), JAN + timedelta(days=9, seconds=7), 123.5)
        conn.execute("INSERT INTO readings (series_id, ts, value) VALUES (%s, %s, %s)", late)
    monkeypatch.setenv("TALLY_DATABASE_URL", pg_url)
    Path(entry.path).write_bytes(Path(entry.path).read_bytes() + b"x")  # damaged copy
    assert cli_main(["archive", "restore", entry.partition]) == 2
    assert "sha256" in capsys.readouterr().err
    Path(entry.path).write_bytes(Path(entry.path).read_bytes()[:-1])
    assert cli_main(["archive", "restore", entry.partition]) == 0
    assert "restored readings_p202601" in capsys.readouterr().out
    with psycopg.connect(pg_url) as conn:
        after = conn.execute("SELECT series_id, ts, value FROM readings_p202601"
                             " ORDER BY 1, 2").fetchall()
        assert conn.execute("SELECT count(*) FROM readings_default").fetchone() == (0,)
        assert archived_entries(conn) == []
    assert after == sorted([*before, late])
