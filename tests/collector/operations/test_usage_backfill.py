"""backfill_usage writes exactly what draining the same ranges through refresh_usage writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from collector.storage.migrate import migrate
from collector.storage.usage_backfill import backfill_usage
from collector.storage.usage_store import refresh_usage

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 3, 1, 7, 20, tzinfo=UTC)  # not a day edge: partial first and last days
NOW = datetime(2026, 4, 2, tzinfo=UTC)


def _series(conn: Conn, name: str, kind: str) -> int:
    row = conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " VALUES (%s, 'main', 'energy', 'kWh', %s) RETURNING series_id", (name, kind)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _readings(conn: Conn, sid: int, ts: np.ndarray, values: np.ndarray) -> None:
    conn.execute(
        "INSERT INTO readings (series_id, ts, value)"
        " SELECT %s, to_timestamp(t), v FROM unnest(%s::float8[], %s::float8[]) AS x(t, v)",
        (sid, ts.tolist(), values.tolist()),
    )


def _seed(conn: Conn) -> tuple[list[int], float, float]:
    rng = np.random.default_rng(7)
    t0 = T0.timestamp()
    n = 4 * 24 * 60  # four days of one-minute readings
    ts = t0 + 60.0 * np.arange(n)
    sids = []
    steady = _series(conn, "steady", "cumulative")
    _readings(conn, steady, ts, np.cumsum(rng.uniform(0, 0.02, n)))
    sids.append(steady)
    gappy = _series(conn, "gappy", "cumulative")  # a 7-hour outage, a glitch, a reset
    vals = np.cumsum(rng.uniform(0, 0.05, n))
    vals[3000] += 900.0
    vals[4000:] -= vals[4000] - 0.1
    keep = (ts < t0 + 20 * 3600) | (ts > t0 + 27 * 3600)
    _readings(conn, gappy, ts[keep], vals[keep])
    sids.append(gappy)
    delta = _series(conn, "delta", "delta")
    _readings(conn, delta, ts[::5], rng.uniform(0, 1, ts[::5].shape[0]))
    sids.append(delta)
    gauge = _series(conn, "gauge", "gauge")
    _readings(conn, gauge, ts[::3], rng.uniform(0, 5, ts[::3].shape[0]))
    sids.append(gauge)
    late = _series(conn, "starts-late", "cumulative")  # only the last day
    _readings(conn, late, ts[-1440:], np.arange(1440) * 0.1)
    sids.append(late)
    return sids, float(ts[0]), float(ts[-1])


def _tables(conn: Conn) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    u = conn.execute(
        "SELECT series_id, bucket, quantity, estimated, quarantined, coverage, reading_count,"
        " flags, peak FROM usage_15m ORDER BY 1, 2").fetchall()
    d = conn.execute(
        "SELECT series_id, day, quantity, estimated, reading_count FROM usage_15m_daily"
        " ORDER BY 1, 2").fetchall()
    return u, d


@pytest.mark.parametrize("group_size", [2000, 2], ids=["one-group", "groups-of-2"])
def test_backfill_equals_refresh_and_a_second_run_changes_nothing(
    pg_url: str, group_size: int
) -> None:
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        sids, a, b = _seed(conn)
        lo, hi = datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
            " SELECT s, %s, %s FROM unnest(%s::bigint[]) s", (lo, hi, sids))
        while refresh_usage(conn, NOW).dirty_rows:
            pass
        expected = _tables(conn)
        assert len(expected[0]) > 1000
        assert len(expected[1]) >= 20
        conn.execute("TRUNCATE usage_15m, usage_15m_daily")

        rep = backfill_usage(conn, NOW, lo, hi, group_size=group_size,
                             group_readings=10_000_000 if group_size > 2 else 3000)
        assert rep.series == len(sids)
        assert rep.readings_loaded >= 4 * 1440
        assert _tables(conn) == expected

        again = backfill_usage(conn, NOW, lo, hi, group_size=group_size)
        assert again.buckets_written == 0
        assert again.days_packed == 0
        assert _tables(conn) == expected


def test_backfill_of_some_series_and_a_sub_range_matches_refresh(pg_url: str) -> None:
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        sids, a, _ = _seed(conn)
        lo = datetime.fromtimestamp(a, UTC) + timedelta(hours=30)
        hi = lo + timedelta(hours=26)
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
            " SELECT s, %s, %s FROM unnest(%s::bigint[]) s", (lo, hi, sids[:2]))
        while refresh_usage(conn, NOW).dirty_rows:
            pass
        expected = _tables(conn)
        conn.execute("TRUNCATE usage_15m, usage_15m_daily")
        backfill_usage(conn, NOW, lo, hi, series_ids=sids[:2])
        assert _tables(conn) == expected


def test_backfill_refuses_a_reversed_range(pg_url: str) -> None:
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn, pytest.raises(
        ValueError, match="before"
    ):
        backfill_usage(conn, NOW, NOW, NOW - timedelta(days=1))


def test_usage_backfill_command(pg_url: str, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main  # noqa: PLC0415

    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _seed(conn)
    monkeypatch.setenv("TALLY_DATABASE_URL", pg_url)
    assert main(["usage-backfill", "--from", "2026-03-01T00:00:00Z",
                 "--to", "2026-03-06T00:00:00Z"]) == 0
    assert "backfilled 5 series" in capsys.readouterr().out
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*) FROM usage_15m").fetchone()
    assert row is not None
    assert row[0] > 1000
    assert main(["usage-backfill", "--from", "2026-03-06", "--to", "2026-03-01"]) == 2
    assert "--to is before --from" in capsys.readouterr().err
