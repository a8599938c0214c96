"""usage_15m maintenance against the real PostgreSQL: refresh, late data, crash safety."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import psycopg
import pytest

from agent.protocol import Batch, Kind, Series
from collector.errors import StorageError
from collector.ingest.messages import DecodedBatch, FlushPlan
from collector.storage import usage_store
from collector.storage.database import open_pool
from collector.storage.ingest_store import ReadingStore
from collector.storage.usage_meters import add_replacement, put_meter_config
from collector.storage.usage_queries import load_usage_matrix, usage_for_series
from collector.storage.usage_store import refresh_usage
from collector.usage import MeterConfig, Replacement, UsageFlag, bucket_edges, derive_usage

from .conftest import ingest, new_series, utc

Conn = psycopg.Connection[Any]
T0 = utc(2026, 3, 29, 0).timestamp()
NOW = utc(2026, 4, 2)


def _rows(conn: Conn, sid: int) -> dict[float, tuple[float, float, int, int]]:
    rows = conn.execute(
        "SELECT extract(epoch FROM bucket)::float8, quantity, estimated, reading_count, flags"
        " FROM usage_15m WHERE series_id = %s ORDER BY bucket", (sid,)).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def test_refresh_consumes_dirty_rows_and_writes_buckets(usage_conn: Conn) -> None:
    """Four readings 1 kWh apart become three 1-kWh buckets; usage_dirty is emptied."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [T0, T0 + 900, T0 + 1800, T0 + 2700], [0.0, 1.0, 2.0, 3.0])
    report = refresh_usage(usage_conn, NOW)
    assert report.dirty_rows == 1
    rows = _rows(usage_conn, sid)
    assert [rows[T0 + k * 900][0] for k in range(3)] == [1.0, 1.0, 1.0]
    assert usage_conn.execute("SELECT count(*) FROM usage_dirty").fetchone() == (0,)


def test_late_reading_replaces_the_estimate(usage_conn: Conn) -> None:
    """A gap first estimated evenly becomes actual usage when the missing readings arrive."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [T0, T0 + 3600], [0.0, 4.0])
    refresh_usage(usage_conn, NOW)
    assert _rows(usage_conn, sid)[T0 + 900][:2] == (1.0, 1.0)
    ingest(usage_conn, sid, [T0 + 900, T0 + 1800, T0 + 2700], [0.5, 1.0, 3.5])
    refresh_usage(usage_conn, NOW)
    rows = _rows(usage_conn, sid)
    assert [rows[T0 + k * 900][0] for k in range(4)] == [0.5, 0.5, 2.5, 0.5]
    assert all(rows[T0 + k * 900][1] == 0.0 for k in range(4))


def test_unchanged_buckets_keep_their_updated_at(usage_conn: Conn) -> None:
    """Re-deriving identical usage does not touch updated_at (billing's late-data signal)."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [T0, T0 + 900, T0 + 1800], [0.0, 1.0, 2.0])
    refresh_usage(usage_conn, utc(2026, 4, 1))
    ingest(usage_conn, sid, [T0 + 1800], [2.0])  # a re-sent duplicate reading
    refresh_usage(usage_conn, utc(2026, 4, 2))
    stamps = usage_conn.execute(
        "SELECT DISTINCT updated_at FROM usage_15m WHERE series_id = %s", (sid,)).fetchall()
    assert stamps == [(utc(2026, 4, 1),)]


def test_crash_before_commit_keeps_the_dirty_rows(
    usage_conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the upsert fails, the DELETE of usage_dirty is rolled back with it."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [T0, T0 + 900], [0.0, 1.0])

    def boom(*_: object) -> int:
        raise psycopg.OperationalError("connection lost")

    monkeypatch.setattr(usage_store, "_write", boom)
    with pytest.raises(StorageError):
        refresh_usage(usage_conn, NOW)
    assert usage_conn.execute("SELECT count(*) FROM usage_dirty").fetchone() == (1,)
    monkeypatch.undo()
    refresh_usage(usage_conn, NOW)
    assert _rows(usage_conn, sid)[T0][0] == 1.0


def test_any_chunking_of_arrivals_matches_deriving_everything_once(usage_conn: Conn) -> None:
    """Readings arriving in random chunks and orders, refreshed in between, end equal."""
    sid = new_series(usage_conn)
    rng = np.random.default_rng(3)
    ts = T0 + np.arange(300) * 900.0
    drop = rng.choice(300, 20, replace=False)  # holes that arrive last
    v = np.cumsum(rng.random(300))
    v[150] = 0.0  # a glitch
    order = [i for i in rng.permutation(300).tolist() if i not in set(drop.tolist())]
    order += drop.tolist()
    rnd = random.Random(5)
    while order:
        n = rnd.randint(1, 40)
        chunk, order = order[:n], order[n:]
        ingest(usage_conn, sid, ts[chunk].tolist(), v[chunk].tolist())
        refresh_usage(usage_conn, NOW)
    expected = derive_usage("cumulative", ts, v, bucket_edges(ts[0], ts[-1], "15m"))
    rows = _rows(usage_conn, sid)
    got = np.asarray([rows.get(float(b), (0.0,))[0] for b in expected.starts])
    assert np.allclose(got, expected.quantity, atol=1e-9)
    assert rows[ts[150]][3] & UsageFlag.GLITCH
    packed = load_usage_matrix(usage_conn, [sid], utc(2026, 3, 29), utc(2026, 4, 2))
    assert np.allclose(packed.quantity[0, : expected.quantity.shape[0]], expected.quantity)


def test_meter_config_change_rederives_history(usage_conn: Conn) -> None:
    """Setting register_max later turns a reset into a rollover for the stored usage."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [T0, T0 + 900, T0 + 1800], [99_999.5, 99_999.9, 0.4])
    refresh_usage(usage_conn, NOW)
    assert _rows(usage_conn, sid)[T0 + 900][0] == pytest.approx(0.4)
    put_meter_config(usage_conn, sid, MeterConfig(register_max=100_000.0), NOW)
    refresh_usage(usage_conn, NOW)
    assert _rows(usage_conn, sid)[T0 + 900][0] == pytest.approx(0.5)


def test_replacement_event_is_applied(usage_conn: Conn) -> None:
    """A recorded meter swap replaces the reset by old_final/new_initial continuity."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [T0, T0 + 900, T0 + 1800], [500.0, 501.0, 0.7])
    refresh_usage(usage_conn, NOW)
    add_replacement(usage_conn, sid, Replacement(T0 + 1200, 501.5, 0.2), NOW)
    refresh_usage(usage_conn, NOW)
    q, _, _, flags = _rows(usage_conn, sid)[T0 + 900]
    assert q == pytest.approx(1.0)
    assert flags & UsageFlag.REPLACEMENT


def test_usage_for_series_rolls_up_dst_days(usage_conn: Conn) -> None:
    """1 kWh per 15 min: 92 kWh on 29 March in Amsterdam, estimated share 0."""
    sid = new_series(usage_conn)
    start = utc(2026, 3, 28, 22).timestamp()
    ts = start + np.arange(0, 2 * 96 + 4) * 900.0
    ingest(usage_conn, sid, ts.tolist(), np.arange(ts.shape[0], dtype=float).tolist())
    refresh_usage(usage_conn, NOW)
    u = usage_for_series(usage_conn, [sid], utc(2026, 3, 29, 0), utc(2026, 3, 30, 0),
                         resolution="1d", tz="Europe/Amsterdam")
    assert u.quantity[0, 0] == 92.0
    assert u.estimated[0, 0] == 0.0
    assert u.ends[0] - u.starts[0] == 23 * 3600


def test_load_usage_matrix_matches_rows(usage_conn: Conn) -> None:
    """The binary-COPY bulk load puts every row at its (series, bucket) cell."""
    a, b = new_series(usage_conn, meter="a"), new_series(usage_conn, meter="b")
    ingest(usage_conn, a, [T0, T0 + 900, T0 + 1800], [0.0, 1.0, 3.0])
    ingest(usage_conn, b, [T0 + 900, T0 + 1800], [10.0, 15.0])
    refresh_usage(usage_conn, NOW)
    m = load_usage_matrix(usage_conn, [b, a], utc(2026, 3, 29), utc(2026, 3, 29, 1))
    assert m.series_ids.tolist() == [a, b]
    assert m.quantity[:, :3].tolist() == [[1.0, 2.0, 0.0], [0.0, 5.0, 0.0]]


def test_second_refresher_backs_off_while_one_runs(usage_conn: Conn, pg_url: str) -> None:
    """While another session holds the refresh lock, refresh_usage does nothing and says so."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [T0, T0 + 900], [0.0, 1.0])
    with psycopg.connect(pg_url) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", (usage_store._LOCK_KEY,))
        report = refresh_usage(usage_conn, NOW)
    assert report.busy
    assert usage_conn.execute("SELECT count(*) FROM usage_dirty").fetchone() == (1,)


def test_batches_written_by_the_ingest_store_become_usage(usage_conn: Conn, pg_url: str) -> None:
    """End to end with helper B's ReadingStore: a flush queues usage_dirty, refresh derives it."""
    t0_ms = int(T0 * 1000)
    ts = t0_ms + np.arange(5, dtype=np.int64) * 900_000
    vals = np.asarray([100.0, 100.5, 0.0, 101.5, 102.0])  # a glitch to 0 in the middle
    batch = Batch("dev-e2e", 1, t0_ms, "test",
                  (Series("main", "energy", "kWh", Kind.CUMULATIVE, ts, vals),))
    pool = open_pool(pg_url, min_size=1, max_size=1)
    try:
        pool.wait(10)
        ReadingStore(pool).write(FlushPlan(
            batches=(DecodedBatch(batch, "tally/v1/dev-e2e/readings", b"", t0_ms),),
            statuses=(), dead_letters=()))
    finally:
        pool.close()
    refresh_usage(usage_conn, NOW)
    row = usage_conn.execute(
        "SELECT sum(quantity), bit_or(flags) FROM usage_15m u JOIN series s USING (series_id)"
        " WHERE s.device_id = 'dev-e2e'").fetchone()
    assert row is not None
    assert row[0] == pytest.approx(2.0)
    assert row[1] & UsageFlag.GLITCH


def test_clock_jump_reading_does_not_fill_years_of_rows(usage_conn: Conn) -> None:
    """A reading stamped in 2000 writes no usage rows for the 26 years before the next one."""
    sid = new_series(usage_conn)
    ingest(usage_conn, sid, [946_684_800.0, T0, T0 + 900], [5.0, 1000.0, 1001.0])
    refresh_usage(usage_conn, NOW)
    n15 = usage_conn.execute("SELECT count(*) FROM usage_15m WHERE series_id = %s", (sid,))
    ndays = usage_conn.execute(
        "SELECT count(*) FROM usage_15m_daily WHERE series_id = %s", (sid,))
    assert n15.fetchone() == (4,)  # 2000 reading, held-out quarter hour, 2026 interval, last
    assert ndays.fetchone() == (3,)  # 2000-01-01, 28 March (held-out quarter hour), 29 March
    q = usage_conn.execute(
        "SELECT sum(quantity), sum(quarantined) FROM usage_15m WHERE series_id = %s", (sid,))
    assert q.fetchone() == (1.0, 995.0)


def test_a_pass_holds_a_bounded_number_of_readings(
    usage_conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 dense series (a reading every 9 s) refreshed with room for 5,000 readings at once:
    the first group is 64 series, every later load stays within the bound, and the usage
    equals the reference derivation of each series."""
    rng = np.random.default_rng(11)
    ts = T0 + np.arange(200) * 9.0
    series = {}
    for k in range(100):
        sid = new_series(usage_conn, meter=f"m{k}")
        v = np.cumsum(rng.random(200))
        ingest(usage_conn, sid, ts.tolist(), v.tolist())
        series[sid] = v
    sizes: list[int] = []
    real_load = usage_store._load

    def counting_load(conn: Conn, windows: Any, history: bool = False) -> int:
        n = real_load(conn, windows, history)
        if windows:
            sizes.append(n)
        return n

    monkeypatch.setattr(usage_store, "_load", counting_load)
    report = refresh_usage(usage_conn, NOW, max_readings=5_000)
    assert report.series == 100
    assert report.readings_loaded == 20_000
    # 64 series first; then 25 (1/9 reading per second over two buckets: 200 each)
    assert sizes == [64 * 200, 25 * 200, 11 * 200]
    edges = bucket_edges(ts[0], ts[-1], "15m")
    for sid, v in series.items():
        expected = derive_usage("cumulative", ts, v, edges)
        rows = _rows(usage_conn, sid)
        got = np.asarray([rows[float(b)][0] for b in expected.starts])
        assert np.allclose(got, expected.quantity, atol=1e-9)
