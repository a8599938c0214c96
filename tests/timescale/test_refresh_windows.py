"""The incremental refresh's window lookups (bounded statements per time group, an unbounded
fallback) answer the same on TimescaleDB as on plain PostgreSQL, for ranges in the middle, at the
head and at the tail of a series, on both sides of a gap longer than the lookups' margin, and for
a series with fewer readings than the glitch window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from collector.storage.migrate import migrate
from collector.storage.usage_meters import load_meta
from collector.storage.usage_store import derive_windows

from .scenario import insert_readings, new_series

T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


def _windows(url: str, timescale: bool) -> list[tuple[Any, ...]]:
    migrate(url, use_timescale=timescale)
    with psycopg.connect(url, autocommit=True) as conn:
        long = new_series(conn, meter="long")
        ts = [T0 + 900.0 * i + (37.0 if i % 7 == 0 else 0.0) for i in range(3 * 96)]
        gap_end = ts[-1] + 2 * 86400.0  # two days without readings, then one more day
        ts += [gap_end + 900.0 * i for i in range(96)]
        insert_readings(conn, long, ts, [0.5 * i for i in range(len(ts))])
        short = new_series(conn, meter="short")
        insert_readings(conn, short, [T0 + 60.0, T0 + 120.0], [1.0, 2.0])
        day = 86400.0
        cases = {
            long: (T0 + day + 3600.0, T0 + day + 7200.0),  # middle
            short: (T0 + 60.0, T0 + 120.0),  # fewer readings than the window
        }
        names = {long: "long", short: "short"}
        out = []
        for sid_from_to in (cases, {long: (T0, T0 + 1800.0)}, {long: (ts[-3], ts[-1])},
                            {long: (gap_end, gap_end + 900.0)},
                            {long: (gap_end - 2 * 86400.0 - 900.0, gap_end - 2 * 86400.0)}):
            dirty = {s: (datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC))
                     for s, (a, b) in sid_from_to.items()}
            meta = load_meta(conn, list(dirty))
            out += sorted((names[w.meta.series_id], w.lo, w.hi, w.load_from, w.load_to)
                          for w in derive_windows(conn, dirty, meta))
        return out


def test_windows_equal_on_timescale_and_plain(timescale_db: str, pg_url: str) -> None:
    plain = _windows(pg_url, False)
    assert len(plain) == 6
    assert _windows(timescale_db, True) == plain
