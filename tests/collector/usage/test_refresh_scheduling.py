"""Which dirty ranges a refresh pass takes, and the refresh loop that runs the passes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from agent.clock import SystemClock
from collector.api.app import create_app
from collector.api.ingest_routes import IngestProbe
from collector.storage.database import Pool, open_pool
from collector.storage.usage_store import refresh_usage, take_dirty
from collector.upkeep import UpkeepTracker
from collector.usage_refresh import RefreshSettings, RefreshStats, UsageRefresher

from .conftest import ingest, new_series, utc

Conn = psycopg.Connection[Any]
T0 = utc(2026, 3, 29, 0).timestamp()
NOW = utc(2026, 4, 2)


def _queue(conn: Conn, sid: int, a: float, b: float) -> None:
    conn.execute(
        "INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
        " VALUES (%s, to_timestamp(%s), to_timestamp(%s))", (sid, a, b))


def _take(conn: Conn, limit: int) -> set[int]:
    with conn.transaction():
        return set(take_dirty(conn, limit).ranges)


def test_a_pass_takes_the_newest_and_the_oldest_series(usage_conn: Conn) -> None:
    """With a backlog, half of a pass goes to what was queued last (fresh readings first),
    half to what was queued first."""
    sids = [new_series(usage_conn, meter=f"m{i}") for i in range(8)]
    for s in sids:
        _queue(usage_conn, s, T0, T0 + 900)
    assert _take(usage_conn, 4) == {sids[0], sids[1], sids[6], sids[7]}
    assert _take(usage_conn, 4) == set(sids[2:6])
    assert _take(usage_conn, 4) == set()


def test_newest_first_never_starves_older_ranges(usage_conn: Conn) -> None:
    """New series keep arriving faster than a pass takes them, yet every range queued
    before them is taken within (ranges ahead of it) / (oldest share of a pass) passes."""
    backlog = [new_series(usage_conn, meter=f"b{i}") for i in range(10)]
    for s in backlog:
        _queue(usage_conn, s, T0, T0 + 900)
    taken_at: dict[int, int] = {}
    for n in range(5):
        for k in range(3):  # three new series per pass; a pass takes at most two of them
            s = new_series(usage_conn, meter=f"n{n}-{k}")
            _queue(usage_conn, s, T0 + 3600, T0 + 4500)
        for s in _take(usage_conn, 4):
            taken_at.setdefault(s, n)
    assert all(s in taken_at for s in backlog), set(backlog) - set(taken_at)
    assert [taken_at[s] for s in backlog] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_a_limit_of_one_takes_the_oldest(usage_conn: Conn) -> None:
    """``limit`` 1 is first come, first served."""
    a, b = new_series(usage_conn, meter="a"), new_series(usage_conn, meter="b")
    _queue(usage_conn, a, T0, T0 + 900)
    _queue(usage_conn, b, T0, T0 + 900)
    assert _take(usage_conn, 1) == {a}


def test_all_ranges_of_a_series_are_taken_and_merged(usage_conn: Conn) -> None:
    """A series queued by several flushes is derived once, over the union of its ranges;
    another series left behind is reported as more work."""
    a, b, c = (new_series(usage_conn, meter=m) for m in ("a", "b", "c"))
    _queue(usage_conn, a, T0 + 1800, T0 + 2700)
    _queue(usage_conn, b, T0, T0 + 900)
    _queue(usage_conn, c, T0, T0 + 900)
    _queue(usage_conn, a, T0, T0 + 900)
    _queue(usage_conn, a, T0 + 900, T0 + 3600)
    with usage_conn.transaction():
        taken = take_dirty(usage_conn, 2)  # the oldest row (a) and the newest (a)
    assert taken.rows == 3
    assert taken.ranges == {a: (utc(2026, 3, 29, 0), utc(2026, 3, 29, 1))}
    assert taken.more
    assert taken.oldest_wait_s is not None
    assert taken.oldest_wait_s >= 0
    with usage_conn.transaction():
        rest = take_dirty(usage_conn, 2)
    assert set(rest.ranges) == {b, c}
    assert not rest.more


def _usage(conn: Conn, sid: int) -> list[tuple[float, float, float, int, int]]:
    rows = conn.execute(
        "SELECT extract(epoch FROM bucket)::float8 - %s, quantity, estimated, reading_count,"
        " flags FROM usage_15m WHERE series_id = %s AND (quantity <> 0 OR reading_count <> 0"
        " OR flags <> 0) ORDER BY bucket", (T0, sid)).fetchall()
    return [tuple(r) for r in rows]


def test_small_passes_in_any_order_give_the_usage_of_one_derivation(usage_conn: Conn) -> None:
    """Live readings, late readings into an estimated gap and a meter reset, refreshed pass by
    pass with two series per pass among other series' traffic, equal the same readings
    derived in one pass at the end."""
    live, whole = new_series(usage_conn, meter="live"), new_series(usage_conn, meter="whole")
    noise = [new_series(usage_conn, meter=f"x{i}") for i in range(4)]
    chunks: list[tuple[list[float], list[float]]] = [
        ([T0 + k * 300 for k in range(12)], [10.0 + k for k in range(12)]),
        ([T0 + 7200 + k * 300 for k in range(6)], [40.0 + k for k in range(6)]),  # gap
        ([T0 + 3600 + k * 300 for k in range(12)], [21.0 + k * 1.5 for k in range(12)]),
        ([T0 + 9000 + k * 300 for k in range(6)], [0.5 + k for k in range(6)]),  # reset
        ([T0 + 1500], [15.0]),  # a re-sent reading
    ]
    for ts, vals in chunks:
        ingest(usage_conn, live, ts, vals)
        for i, s in enumerate(noise):
            ingest(usage_conn, s, [T0 + i * 60, T0 + 900 + i * 60], [1.0, 2.0])
        refresh_usage(usage_conn, NOW, limit=2)
    while refresh_usage(usage_conn, NOW, limit=2).dirty_rows:
        pass
    for ts, vals in chunks:
        usage_conn.execute(
            "INSERT INTO readings (series_id, ts, value) SELECT %s, to_timestamp(t), v"
            " FROM unnest(%s::float8[], %s::float8[]) AS x(t, v)", (whole, ts, vals))
    _queue(usage_conn, whole, T0, T0 + 12_000)
    refresh_usage(usage_conn, NOW)
    assert _usage(usage_conn, live) == _usage(usage_conn, whole)
    assert len(_usage(usage_conn, live)) >= 10


@contextmanager
def _running(pool: Pool, settings: RefreshSettings) -> Iterator[UsageRefresher]:
    refresher = UsageRefresher(pool, SystemClock(), UpkeepTracker(), settings)
    stop = threading.Event()
    thread = threading.Thread(target=refresher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield refresher
    finally:
        stop.set()
        refresher.wake()
        thread.join(10)
        assert not thread.is_alive()


def _derived(conn: Conn, sid: int) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM usage_15m WHERE series_id = %s)", (sid,)
    ).fetchone() == (True,)


def _wait(pred: Any, timeout_s: float) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic() - t0


@pytest.fixture
def pool(pg_url: str, usage_conn: Conn) -> Iterator[Pool]:
    p = open_pool(pg_url, min_size=1, max_size=2, name="refresh-loop")
    yield p
    p.close()


def test_a_wake_runs_a_pass_without_waiting_for_the_poll(usage_conn: Conn, pool: Pool) -> None:
    """Committed readings plus ``wake`` (what the ingest writer does after its COMMIT) are
    derived at once, although the poll interval is a minute."""
    sid = new_series(usage_conn)
    with _running(pool, RefreshSettings(poll_s=60)) as refresher:
        _wait(lambda: refresher.stats().passes >= 1, 10)  # the start-up pass
        ingest(usage_conn, sid, [T0, T0 + 900], [0.0, 1.0])
        time.sleep(0.3)
        assert not _derived(usage_conn, sid)  # nothing polls meanwhile
        refresher.wake()
        assert _wait(lambda: _derived(usage_conn, sid), 10) < 5
        stats = refresher.stats()
    assert stats.passes >= 2
    assert stats.failures == 0
    assert stats.last_freshness_s is not None
    assert stats.last_freshness_s >= 0.3
    assert stats.freshness_counts[-1] == 1  # only the pass that derived something counted


def test_ranges_left_by_a_stopped_process_are_derived_at_start(
    usage_conn: Conn, pool: Pool
) -> None:
    """Readings committed and queued, then the process died before its refresh: the next
    refresher derives them in its first pass, without a wake-up or the poll."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [T0, T0 + 900, T0 + 1800], [0.0, 1.0, 3.0])
    with _running(pool, RefreshSettings(poll_s=60)):
        _wait(lambda: _derived(usage_conn, sid), 10)
    assert usage_conn.execute(
        "SELECT sum(quantity) FROM usage_15m WHERE series_id = %s", (sid,)
    ).fetchone() == (3.0,)
    assert usage_conn.execute("SELECT count(*) FROM usage_dirty").fetchone() == (0,)


def test_a_backlog_drains_pass_after_pass_without_wake_ups(
    usage_conn: Conn, pool: Pool
) -> None:
    """More dirty series than one pass takes: passes follow each other until the queue is
    empty, with no wake-up and no poll in between."""
    sids = [new_series(usage_conn, meter=f"m{i}") for i in range(6)]
    for s in sids:
        ingest(usage_conn, s, [T0, T0 + 900], [0.0, 1.0])
    with _running(pool, RefreshSettings(poll_s=60, min_gap_s=0, limit=2)) as refresher:
        _wait(lambda: all(_derived(usage_conn, s) for s in sids), 10)
        assert refresher.stats().passes >= 3


def test_health_shows_how_far_usage_trails_ingest(usage_conn: Conn, pool: Pool) -> None:
    """/health reports the refresh's passes, its last commit → visible time and the ranges
    waiting now with the age of the oldest."""
    sid = new_series(usage_conn)
    usage_conn.execute(
        "INSERT INTO usage_dirty (series_id, ts_from, ts_to, queued_at)"
        " VALUES (%s, to_timestamp(%s), to_timestamp(%s), now() - interval '20 seconds')",
        (sid, T0, T0 + 900))

    def probe() -> IngestProbe:
        return IngestProbe(
            connected=True, pending=0, lag_s=0.0, last_flush_at=None, storage_ok=True,
            batches=0, readings=0, dead_letters=0,
            usage_refresh=RefreshStats(passes=5, last_pass_s=0.1, last_freshness_s=0.6),
        )

    with TestClient(create_app(pool, ingest_probe=probe)) as client:
        body = client.get("/health").json()
    usage = body["usage_refresh"]
    assert usage["passes"] == 5
    assert usage["last_freshness_s"] == 0.6
    assert usage["pending_ranges"] == 1
    assert usage["pending_lag_s"] >= 20


def test_passes_are_spaced_out_while_ingest_is_behind(usage_conn: Conn, pool: Pool) -> None:
    """A backlog of refresh work normally drains pass after pass; while ingest reports that
    it is behind, passes start at least ``behind_gap_s`` apart (readings are stored first)."""
    sids = [new_series(usage_conn, meter=f"m{i}") for i in range(4)]
    for s in sids:
        ingest(usage_conn, s, [T0, T0 + 900], [0.0, 1.0])
    settings = RefreshSettings(poll_s=60, min_gap_s=0, limit=1, behind_gap_s=0.5)
    refresher = UsageRefresher(pool, SystemClock(), UpkeepTracker(), settings,
                               ingest_behind=lambda: True)
    stop = threading.Event()
    thread = threading.Thread(target=refresher.run, args=(stop,), daemon=True)
    t0 = time.monotonic()
    thread.start()
    try:
        _wait(lambda: all(_derived(usage_conn, s) for s in sids), 20)
        took = time.monotonic() - t0
    finally:
        stop.set()
        refresher.wake()
        thread.join(10)
    assert took >= 3 * 0.5  # four passes of one series, three gaps between them
