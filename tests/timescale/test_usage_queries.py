"""usage_for_series on the TimescaleDB schema (continuous aggregates for UTC-aligned hours and
days) gives the same numbers as on plain PostgreSQL for the same 15-minute usage."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import psycopg
import pytest

from collector.storage.migrate import migrate
from collector.storage.usage_queries import SeriesUsage, load_usage_matrix, usage_for_series
from collector.storage.usage_store import refresh_rollups, refresh_usage

from .scenario import (
    insert_readings,
    insert_usage,
    insert_usage_daily,
    mark_rollups_pending,
    new_series,
    usage_daily_rows,
    usage_rows,
    utc,
)

START = utc(2026, 10, 23)  # spans the end of European summer time (25 October)
END = utc(2026, 10, 27)
KINDS = ("cumulative", "gauge", "delta")


def _readings(kind: str, rng: random.Random) -> tuple[list[float], list[float]]:
    """Five-minute readings with a three-hour hole (estimated on the way to usage_15m)."""
    t0, t1 = START.timestamp(), END.timestamp()
    hole = (t0 + 40 * 3600, t0 + 43 * 3600)
    ts = [t for t in np.arange(t0, t1, 300.0).tolist() if not hole[0] < t < hole[1]]
    if kind == "cumulative":
        values = np.cumsum([rng.uniform(0, 2) for _ in ts]).tolist()
    else:
        values = [rng.uniform(0, 5) for _ in ts]
    return ts, values


def _scenario(pg: psycopg.Connection[Any], ts_conn: psycopg.Connection[Any]) -> list[int]:
    """The same series and readings in both databases; usage derived on plain PostgreSQL and
    stored as is on TimescaleDB (refresh_usage needs COPY, which the sandbox lacks)."""
    rng = random.Random(20261025)
    ids = []
    for n, kind in enumerate(KINDS):
        sid = new_series(pg, kind, meter=f"m{n}")
        assert new_series(ts_conn, kind, meter=f"m{n}") == sid
        ts, values = _readings(kind, rng)
        insert_readings(pg, sid, ts, values)
        insert_readings(ts_conn, sid, ts, values)
        ids.append(sid)
    refresh_usage(pg, utc(2026, 11, 1))
    insert_usage(ts_conn, usage_rows(pg))
    insert_usage_daily(ts_conn, usage_daily_rows(pg))
    mark_rollups_pending(ts_conn, START, END)
    assert refresh_rollups(ts_conn) == 1
    return ids


def _assert_same(a: SeriesUsage, b: SeriesUsage) -> None:
    np.testing.assert_array_equal(a.series_ids, b.series_ids)
    np.testing.assert_array_equal(a.starts, b.starts)
    np.testing.assert_array_equal(a.ends, b.ends)
    for name in ("quantity", "estimated", "quarantined", "coverage", "peak"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-9,
                                   equal_nan=True, err_msg=name)
    np.testing.assert_array_equal(a.reading_count, b.reading_count)
    np.testing.assert_array_equal(a.flags, b.flags)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "Asia/Kolkata"])
@pytest.mark.parametrize("resolution", ["15m", "1h", "1d"])
def test_usage_matches_plain_postgresql(
    timescale_db: str, pg_url: str, resolution: str, tz: str
) -> None:
    """Every field of usage_for_series agrees between the two schema flavours."""
    migrate(pg_url, use_timescale=False)
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(pg_url, autocommit=True) as pg, \
            psycopg.connect(timescale_db, autocommit=True) as tsdb:
        ids = _scenario(pg, tsdb)
        start, end = utc(2026, 10, 23, 5, 30), utc(2026, 10, 26, 17)
        plain = usage_for_series(pg, ids, start, end, resolution=resolution, tz=tz)
        timescale = usage_for_series(tsdb, ids, start, end, resolution=resolution, tz=tz)
    assert plain.quantity[0].sum() > 0
    assert plain.estimated[0].sum() > 0
    assert not np.all(np.isnan(plain.peak[1]))
    _assert_same(timescale, plain)


def test_rollups_are_materialized_with_the_same_totals(timescale_db: str, pg_url: str) -> None:
    """After refresh_rollups, usage_1h and usage_1d hold materialized rows equal to usage_15m."""
    migrate(pg_url, use_timescale=False)
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(pg_url, autocommit=True) as pg, \
            psycopg.connect(timescale_db, autocommit=True) as tsdb:
        _scenario(pg, tsdb)
        tsdb.execute("ALTER MATERIALIZED VIEW usage_1h SET (timescaledb.materialized_only = true)")
        tsdb.execute("ALTER MATERIALIZED VIEW usage_1d SET (timescaledb.materialized_only = true)")
        totals = [
            tsdb.execute(
                f"SELECT series_id, sum(quantity), sum(reading_count) FROM {t}"
                " GROUP BY 1 ORDER BY 1"
            ).fetchall()
            for t in ("usage_15m", "usage_1h", "usage_1d")
        ]
    assert len(totals[0]) == len(KINDS)
    for other in totals[1:]:
        assert [(s, round(q, 6), c) for s, q, c in other] == [
            (s, round(q, 6), c) for s, q, c in totals[0]
        ]


def test_usage_matrix_matches_plain_postgresql(timescale_db: str, pg_url: str) -> None:
    """load_usage_matrix (binary COPY TO STDOUT of usage_15m_daily) agrees on both flavours."""
    migrate(pg_url, use_timescale=False)
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(pg_url, autocommit=True) as pg, \
            psycopg.connect(timescale_db, autocommit=True) as tsdb:
        ids = _scenario(pg, tsdb)
        start, end = utc(2026, 10, 23, 5, 30), utc(2026, 10, 26, 17)
        plain = load_usage_matrix(pg, ids, start, end)
        timescale = load_usage_matrix(tsdb, ids, start, end)
    assert plain.quantity.sum() > 0
    for name in ("series_ids", "starts", "ends", "quantity", "estimated", "reading_count"):
        np.testing.assert_array_equal(getattr(timescale, name), getattr(plain, name), name)
