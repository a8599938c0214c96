"""Loading a scope's usage grid from storage (the one module of the package that does I/O).

The scope becomes series windows (``collector.storage.analytics_store``); their packed daily
usage is read with the billing bulk reader (binary ``COPY`` of ``usage_15m_daily`` decoded by
numpy) in chunks of series, each chunk summed into the grid at once, so memory stays bounded
for the whole fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import psycopg

from collector.analytics.anomalies import MeterUsage
from collector.analytics.grid import grid_edges, grid_from_rows, matrix_from_rows
from collector.analytics.model import BUCKET_S, SeriesWindow, UsageGrid
from collector.storage import analytics_anomaly_store as anomaly_store
from collector.storage.analytics_usage import DailySums, sum_daily_usage
from collector.storage.billing_usage_store import load_usage_rows
from collector.storage.database import Pool
from collector.storage.usage_fleet import fleet_usage

__all__ = [
    "CHUNK_SERIES",
    "load_fleet_grid",
    "load_grid",
    "load_grid_pooled",
    "load_meter_usage",
]

Conn = psycopg.Connection[Any]
CHUNK_SERIES: Final = 2000
PARALLEL_MIN_SERIES: Final = 1000  # below this one connection is as fast


def load_grid(
    conn: Conn, windows: Sequence[SeriesWindow], start: datetime, end: datetime
) -> UsageGrid:
    """The summed 15-minute usage of ``windows`` in ``[start, end)``. Meters that count whole
    (no window bounds: meter, site, fleet scopes) are summed per day as they stream in
    (``sum_daily_usage``); subscription windows are cut row by row."""
    lo, hi = start.timestamp(), end.timestamp()
    ids = sorted({w.series_id for w in windows})
    if ids and all(w.start is None and w.end is None for w in windows):
        return _summed_grid(conn, ids, start, end)
    grid: UsageGrid | None = None
    for i in range(0, max(len(ids), 1), CHUNK_SERIES):
        part = ids[i : i + CHUNK_SERIES]
        rows = load_usage_rows(conn, part, start, end)
        chunk_windows = [w for w in windows if w.series_id in set(part)]
        g = grid_from_rows(
            rows.series,
            rows.bucket,
            rows.quantity,
            rows.estimated,
            rows.readings,
            start=lo,
            end=hi,
            windows=chunk_windows,
        )
        grid = g if grid is None else UsageGrid(
            grid.starts,
            grid.quantity + g.quantity,
            grid.estimated + g.estimated,
            grid.readings + g.readings,
        )
    assert grid is not None
    return grid


def load_grid_pooled(
    pool: Pool,
    windows: Sequence[SeriesWindow],
    start: datetime,
    end: datetime,
    *,
    parts: int = 2,
) -> UsageGrid:
    """``load_grid`` for large whole-meter scopes on ``parts`` connections at once (each sums
    a range of meters; the database reads them in parallel); small or windowed scopes use one
    connection."""
    ids = sorted({w.series_id for w in windows})
    whole = all(w.start is None and w.end is None for w in windows)
    if parts < 2 or not whole or len(ids) < PARALLEL_MIN_SERIES:
        with pool.connection() as conn:
            return load_grid(conn, windows, start, end)
    size = -(-len(ids) // parts)
    ranges = [ids[k : k + size] for k in range(0, len(ids), size)]

    def one(part: list[int]) -> DailySums:
        with pool.connection() as conn:
            return sum_daily_usage(conn, part, start, end)

    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="analytics") as ex:
        sums = list(ex.map(one, ranges))
    total = sums[0]
    for more in sums[1:]:
        total.quantity += more.quantity
        total.estimated += more.estimated
        total.readings += more.readings
    return _grid_of(total, start, end)


def load_fleet_grid(conn: Conn, unit: str | None, start: datetime, end: datetime) -> UsageGrid:
    """The summed 15-minute usage of every meter of ``unit`` in ``[start, end)``, from the
    fleet rollup (``usage_fleet_15m``: one row per quarter hour, whatever the fleet's size).
    ``unit`` None (a fleet without meters) is all zeros."""
    lo, hi = grid_edges(start.timestamp(), end.timestamp())
    starts = np.arange(lo, hi, BUCKET_S, dtype=np.int64)
    q = np.zeros(starts.shape[0])
    e = np.zeros_like(q)
    rc = np.zeros(starts.shape[0], dtype=np.int64)
    if unit is not None:
        got = fleet_usage(conn, unit, datetime.fromtimestamp(lo, UTC),
                          datetime.fromtimestamp(hi, UTC))
        j = (got.bucket - lo) // BUCKET_S
        q[j], e[j], rc[j] = got.quantity, got.estimated, got.readings
    return UsageGrid(starts, q, e, rc)


def _summed_grid(conn: Conn, ids: Sequence[int], start: datetime, end: datetime) -> UsageGrid:
    return _grid_of(sum_daily_usage(conn, ids, start, end), start, end)


def _grid_of(sums: DailySums, start: datetime, end: datetime) -> UsageGrid:
    lo, hi = grid_edges(start.timestamp(), end.timestamp())
    j0 = (lo - sums.day0) // BUCKET_S
    j1 = (hi - sums.day0) // BUCKET_S
    return UsageGrid(
        np.arange(lo, hi, BUCKET_S, dtype=np.int64),
        sums.quantity.reshape(-1)[j0:j1].copy(),
        sums.estimated.reshape(-1)[j0:j1].copy(),
        sums.readings.reshape(-1)[j0:j1].copy(),
    )


def empty_like(grid: UsageGrid) -> UsageGrid:
    """A grid of zeros on ``grid``'s buckets."""
    z = np.zeros_like(grid.quantity)
    return UsageGrid(grid.starts, z, z.copy(), np.zeros_like(grid.readings))


_RESTING_UNITS: Final = frozenset({"L", "l", "m3", "m³", "gal", "ft3", "ft³"})


def load_meter_usage(
    conn: Conn, windows: Sequence[SeriesWindow], start: datetime, end: datetime
) -> MeterUsage:
    """What the anomaly detectors need for the meters of ``windows`` in ``[start, end)``:
    their 15-minute usage, last readings, clamped buckets and site vacancies. Volume meters
    (water, gas in m³) are expected to rest at night."""
    ids = np.asarray(sorted({w.series_id for w in windows}), dtype=np.int64)
    lo, hi = grid_edges(start.timestamp(), end.timestamp())
    starts = np.arange(lo, hi, BUCKET_S, dtype=np.int64)
    q = np.zeros((ids.shape[0], starts.shape[0]))
    e = np.zeros_like(q)
    for i in range(0, ids.shape[0], CHUNK_SERIES):
        part = ids[i : i + CHUNK_SERIES]
        rows = load_usage_rows(conn, part.tolist(), start, end)
        q[i : i + part.shape[0]] = matrix_from_rows(
            rows.series, rows.bucket, rows.quantity, series_ids=part, start=lo, end=hi
        )
        e[i : i + part.shape[0]] = matrix_from_rows(
            rows.series, rows.bucket, rows.estimated, series_ids=part, start=lo, end=hi
        )
    flags = np.zeros(q.shape, dtype=np.int64)
    row = {int(s): k for k, s in enumerate(ids)}
    for sid, b in anomaly_store.clamped_buckets(conn, ids.tolist(), start, end):
        flags[row[sid], (b - lo) // BUCKET_S] |= anomaly_store.NEGATIVE_CLAMPED
    last = anomaly_store.last_readings(conn, ids.tolist(), end)
    units = anomaly_store.series_units(conn, ids.tolist())
    return MeterUsage(
        ids,
        starts,
        q,
        e,
        np.asarray([units.get(int(s), "") in _RESTING_UNITS for s in ids], dtype=np.bool_),
        np.asarray([last[int(s)].timestamp() if int(s) in last else np.nan for s in ids]),
        anomaly_store.vacancies_for_series(conn, ids.tolist(), start, end),
        flags,
    )
