"""The refresh's bounded lookups on readings: time groups (pure) and derivation windows equal to
the unbounded lookup's for ranges at the head, in the middle, at the tail, across long gaps and
without readings; the steady state (every range at its series' tail) never needs the fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from collector.storage import reading_lookups
from collector.storage.migrate import migrate
from collector.storage.reading_lookups import time_groups
from collector.storage.usage_meters import load_meta
from collector.storage.usage_store import derive_windows

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 1, 5, tzinfo=UTC)
DAY = 86400.0


def _flat(groups: list[np.ndarray[Any, Any]]) -> list[int]:
    return sorted(int(i) for g in groups for i in g)


class TestTimeGroups:
    def test_no_ranges_no_groups(self) -> None:
        """Nothing to look up gives no statement."""
        assert time_groups(np.zeros(0), np.zeros(0)) == []

    def test_ranges_of_the_same_days_share_a_group(self) -> None:
        """Ranges starting and ending on the same days form one group, others their own."""
        lo = np.asarray([0.0, 3600.0, 5 * DAY, 7200.0])
        hi = np.asarray([100.0, 7200.0, 5 * DAY + 10, 2 * DAY])
        groups = time_groups(lo, hi)
        assert sorted(g.tolist() for g in groups) == [[0, 1], [2], [3]]

    def test_open_ends_are_grouped_apart_from_finite_ones(self) -> None:
        """-inf/+inf ends make groups of their own; every index is in exactly one group."""
        lo = np.asarray([-np.inf, 10.0, 20.0, -np.inf], dtype=np.float64)
        hi = np.asarray([30.0, np.inf, 40.0, np.inf], dtype=np.float64)
        groups = time_groups(lo, hi)
        assert len(groups) == 4
        assert _flat(groups) == [0, 1, 2, 3]

    def test_too_many_groups_widen_until_few_enough(self) -> None:
        """Ranges on 100 different days end up in at most max_groups groups, indices ascending."""
        lo = np.arange(100) * DAY
        groups = time_groups(lo.astype(np.float64), (lo + 60.0).astype(np.float64), max_groups=5)
        assert 1 <= len(groups) <= 5
        assert _flat(groups) == list(range(100))
        assert all(np.all(np.diff(g) > 0) for g in groups)

    def test_bad_arguments_are_refused(self) -> None:
        """max_groups below 1 and mismatched arrays are errors, not silent truncation."""
        with pytest.raises(ValueError, match="max_groups"):
            time_groups(np.zeros(1), np.zeros(1), max_groups=0)
        with pytest.raises(ValueError, match="shape"):
            time_groups(np.zeros(2), np.zeros(1))


def _series(conn: Conn, meter: str) -> int:
    row = conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " VALUES ('dev-1', %s, 'energy', 'kWh', 'cumulative') RETURNING series_id",
        (meter,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _readings(conn: Conn, sid: int, ts: list[float]) -> None:
    conn.execute(
        "INSERT INTO readings (series_id, ts, value) SELECT %s, to_timestamp(t), v"
        " FROM unnest(%s::float8[], %s::float8[]) AS x(t, v)",
        (sid, ts, [0.25 * i for i in range(len(ts))]),
    )


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@pytest.fixture
def conn(pg_url: str) -> Any:
    migrate(pg_url, use_timescale=False)
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("SELECT tally_ensure_reading_partitions('2026-01-01', 2)")
        yield c


def _unbounded(conn: Conn, dirty: dict[int, tuple[datetime, datetime]]) -> list[Any]:
    meta = load_meta(conn, list(dirty))
    sids = list(dirty)
    rows = conn.execute(
        reading_lookups._UNBOUNDED_SQL,  # the reference: the lookup without margins
        (sids, [dirty[s][0] for s in sids], [dirty[s][1] for s in sids],
         [meta[s].config.glitch_window + 1 for s in sids]),
    ).fetchall()
    return sorted(tuple(r) for r in rows)


def _bounded(conn: Conn, dirty: dict[int, tuple[datetime, datetime]]) -> list[Any]:
    meta = load_meta(conn, list(dirty))
    return sorted((w.meta.series_id, w.lo, w.hi, w.load_from, w.load_to)
                  for w in derive_windows(conn, dirty, meta))


def test_windows_equal_the_unbounded_lookup(conn: Conn) -> None:
    """Head, middle, tail, both sides of a two-day gap, past the end, a series of two readings
    and one without readings: the bounded windows are the unbounded lookup's."""
    t0 = T0.timestamp()
    ts = [t0 + 900.0 * i + (41.0 if i % 5 == 0 else 0.0) for i in range(2 * 96)]
    gap_end = ts[-1] + 2 * DAY
    ts += [gap_end + 900.0 * i for i in range(96)]
    long = _series(conn, "long")
    _readings(conn, long, ts)
    two = _series(conn, "two")
    _readings(conn, two, [t0 + 60.0, t0 + 960.0])
    none = _series(conn, "none")
    before_gap = ts[2 * 96 - 1]
    cases = [
        (ts[0], ts[3]),  # head
        (t0 + DAY + 3600.0, t0 + DAY + 7200.0),  # middle
        (ts[-1], ts[-1]),  # tail
        (gap_end, gap_end + 1800.0),  # just after the gap: lower neighbours across it
        (before_gap - 1800.0, before_gap),  # just before the gap: upper neighbours across it
        (ts[-1] + DAY, ts[-1] + DAY + 60.0),  # past the last reading
        (ts[0] - DAY, ts[-1] + DAY),  # the whole series
    ]
    for a, b in cases:
        dirty = {long: (_at(a), _at(b)), two: (_at(a), _at(b)), none: (_at(a), _at(b))}
        assert _bounded(conn, dirty) == _unbounded(conn, dirty), (a - t0, b - t0)


def test_steady_state_needs_no_unbounded_lookup(conn: Conn, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    """Every series dirty at its newest reading (each ingest flush): settled within the margin,
    in one bounded statement, and equal to the unbounded answer."""
    t0 = T0.timestamp()
    sids = [_series(conn, f"m{n}") for n in range(20)]
    for sid in sids:
        _readings(conn, sid, [t0 + 900.0 * i for i in range(3 * 96)])
    last = _at(t0 + 900.0 * (3 * 96 - 1))
    dirty = {s: (last, last) for s in sids}
    expected = _unbounded(conn, dirty)
    statements: list[str] = []
    real = conn.execute

    def spy(query: Any, params: Any = None, **kw: Any) -> Any:
        statements.append(str(query))
        return real(query, params, **kw)

    monkeypatch.setattr(conn, "execute", spy)
    assert _bounded(conn, dirty) == expected
    assert reading_lookups._UNBOUNDED_SQL not in statements
    assert statements.count(reading_lookups._BOUNDED_SQL) == 1
    assert all(w[4] == float("inf") for w in expected)  # nothing after the tail


def test_load_ranges_reads_each_range_in_order(conn: Conn) -> None:
    """Ranges in different time groups (and open-ended ones) come back per range, in time
    order, with exactly the readings inside each range."""
    t0 = T0.timestamp()
    a, b = _series(conn, "a"), _series(conn, "b")
    ts = [t0 + 900.0 * i for i in range(20 * 96)]
    _readings(conn, a, ts)
    _readings(conn, b, ts)
    ranges = [(a, ts[10], ts[20]), (b, ts[-5], float("inf")), (a, float("-inf"), ts[2]),
              (b, ts[15 * 96], ts[15 * 96])]
    idx, got_ts, values = reading_lookups.load_ranges(
        conn, [r[0] for r in ranges], [r[1] for r in ranges], [r[2] for r in ranges]
    )
    assert idx.tolist() == [0] * 11 + [1] * 5 + [2] * 3 + [3]
    assert got_ts.tolist() == ts[10:21] + ts[-5:] + ts[:3] + [ts[15 * 96]]
    assert values.tolist() == [0.25 * i for i in range(10, 21)] + [
        0.25 * i for i in range(len(ts) - 5, len(ts))] + [0.0, 0.25, 0.5] + [0.25 * 15 * 96]
    assert timedelta(seconds=got_ts[1] - got_ts[0]) == timedelta(minutes=15)
