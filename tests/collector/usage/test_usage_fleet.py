"""The fleet rollup (usage_fleet_15m) stays equal to a plain GROUP BY over usage_15m through
refreshes in random chunks, late data, re-derivation (meter config, replacement), backfill."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from collector.storage.usage_backfill import backfill_usage
from collector.storage.usage_fleet import fleet_usage, resum_fleet
from collector.storage.usage_meters import add_replacement, put_meter_config
from collector.storage.usage_store import refresh_usage
from collector.usage import MeterConfig, Replacement

from .conftest import ingest, utc

Conn = psycopg.Connection[Any]
T0 = utc(2026, 3, 28, 6).timestamp()
NOW = utc(2026, 4, 3)

Sums = dict[tuple[str, float], tuple[float, float, int]]


def _series(conn: Conn, device: str, unit: str, kind: str) -> int:
    row = conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind)"
        " VALUES (%s, 'main', 'energy', %s, %s) RETURNING series_id",
        (device, unit, kind),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _naive(conn: Conn) -> Sums:
    rows = conn.execute(
        "SELECT r.unit, extract(epoch FROM u.bucket)::float8, sum(u.quantity),"
        " sum(u.estimated), sum(u.reading_count) FROM usage_15m u"
        " JOIN series r ON r.series_id = u.series_id GROUP BY 1, 2"
    ).fetchall()
    return {(r[0], r[1]): (r[2], r[3], int(r[4])) for r in rows}


def _rollup(conn: Conn) -> Sums:
    rows = conn.execute(
        "SELECT unit, extract(epoch FROM bucket)::float8, quantity, estimated, reading_count"
        " FROM usage_fleet_15m"
    ).fetchall()
    return {(r[0], r[1]): (r[2], r[3], int(r[4])) for r in rows}


def _assert_rollup_is_the_sum(conn: Conn) -> float:
    """The rollup equals the GROUP BY (a bucket absent on one side is zero); returns the
    total quantity so callers can see it is not trivially empty."""
    naive, rolled = _naive(conn), _rollup(conn)
    zero = (0.0, 0.0, 0)
    keys = sorted(set(naive) | set(rolled))
    a = np.asarray([naive.get(k, zero) for k in keys], dtype=np.float64).reshape(-1, 3)
    b = np.asarray([rolled.get(k, zero) for k in keys], dtype=np.float64).reshape(-1, 3)
    bad = ~np.isclose(a, b, rtol=1e-12, atol=1e-9).all(axis=1)
    assert not bad.any(), [(keys[i], naive.get(keys[i]), rolled.get(keys[i]))
                           for i in np.flatnonzero(bad)[:5]]
    assert np.array_equal(a[:, 2], b[:, 2])  # reading counts exactly
    return float(a[:, 0].sum())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollup_equals_group_by_through_random_refreshes_late_data_and_rederivation(
    usage_conn: Conn, seed: int
) -> None:
    """Readings of kWh and m3 meters arrive in random chunks (some days late), refreshed in
    random batch sizes; then a register_max change, a meter swap and backfills re-derive
    history. After every step the rollup is the sum of usage_15m per unit and bucket."""
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    meters = [("a", "kWh", "cumulative"), ("b", "kWh", "cumulative"), ("c", "kWh", "delta"),
              ("d", "m3", "cumulative"), ("e", "m3", "gauge")]
    sids = [_series(usage_conn, *m) for m in meters]
    n = 3 * 96
    ts = {s: T0 + np.sort(rng.choice(n * 3, n, replace=False)) * 300.0 for s in sids}
    vals = {s: np.cumsum(rng.uniform(0, 0.4, n)).round(3) for s in sids}
    vals[sids[2]] = rng.uniform(0, 1, n).round(3)  # delta: usage per reading
    vals[sids[0]][100] = 0.0  # a glitch
    vals[sids[1]][200:] -= vals[sids[1]][200] - 0.5  # a reset
    todo = [(s, i) for s in sids for i in range(n)]
    rnd.shuffle(todo)
    late = todo[: n // 4]  # held back, arrive last (days late)
    todo = todo[n // 4 :] + late
    steps = 0
    while todo:
        k = rnd.randint(5, 120)
        chunk, todo = todo[:k], todo[k:]
        for s in sids:
            idx = sorted(i for t, i in chunk if t == s)
            if idx:
                ingest(usage_conn, s, ts[s][idx].tolist(), vals[s][idx].tolist())
        if rnd.random() < 0.7:
            while refresh_usage(usage_conn, NOW, limit=rnd.randint(1, 4)).dirty_rows:
                pass
            _assert_rollup_is_the_sum(usage_conn)
            steps += 1
    while refresh_usage(usage_conn, NOW).dirty_rows:
        pass
    assert steps > 3
    assert _assert_rollup_is_the_sum(usage_conn) > 10

    put_meter_config(usage_conn, sids[1], MeterConfig(register_max=float(vals[sids[1]][199])
                                                      + 1.0), NOW)
    refresh_usage(usage_conn, NOW)
    _assert_rollup_is_the_sum(usage_conn)
    swap = float(ts[sids[0]][150])
    add_replacement(usage_conn, sids[0], Replacement(swap + 1, float(vals[sids[0]][150]) + 0.1,
                                                      0.05), NOW)
    refresh_usage(usage_conn, NOW)
    _assert_rollup_is_the_sum(usage_conn)

    lo = utc(2026, 3, 28, 20)
    backfill_usage(usage_conn, NOW, lo, lo + timedelta(hours=30), series_ids=sids[1:4],
                   group_size=2)
    _assert_rollup_is_the_sum(usage_conn)
    usage_conn.execute("DELETE FROM readings WHERE series_id = %s AND ts > %s",
                       (sids[3], lo + timedelta(hours=10)))  # a re-derivation that loses usage
    backfill_usage(usage_conn, NOW, utc(2026, 3, 27), utc(2026, 4, 2))
    total = _assert_rollup_is_the_sum(usage_conn)
    assert total > 10


def test_resum_repairs_a_range_and_fleet_usage_reads_it(usage_conn: Conn) -> None:
    """resum_fleet recomputes a damaged range exactly; fleet_usage returns its buckets in
    order for one unit only."""
    kwh = _series(usage_conn, "a", "kWh", "cumulative")
    m3 = _series(usage_conn, "b", "m3", "cumulative")
    ingest(usage_conn, kwh, [T0 + 900 * k for k in range(9)], [0.5 * k for k in range(9)])
    ingest(usage_conn, m3, [T0 + 900 * k for k in range(9)], [2.0 * k for k in range(9)])
    refresh_usage(usage_conn, NOW)
    usage_conn.execute("UPDATE usage_fleet_15m SET quantity = quantity + 7")
    start, end = utc(2026, 3, 28), utc(2026, 3, 29)
    assert resum_fleet(usage_conn, start, end) == 18  # 9 buckets (the last: a reading) x 2
    _assert_rollup_is_the_sum(usage_conn)
    got = fleet_usage(usage_conn, "kWh", start, end)
    assert got.bucket.tolist() == [T0 + 900 * k for k in range(9)]
    assert got.quantity.tolist() == [0.5] * 8 + [0.0]
    assert got.readings.sum() == 9
    assert fleet_usage(usage_conn, "L", start, end).bucket.shape == (0,)
