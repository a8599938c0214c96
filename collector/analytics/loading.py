"""Loading a scope's usage grid from storage (the one module of the package that does I/O).

The scope becomes series windows (``collector.storage.analytics_store``); their packed daily
usage is read with the billing bulk reader (binary ``COPY`` of ``usage_15m_daily`` decoded by
numpy) in chunks of series, each chunk summed into the grid at once, so memory stays bounded
for the whole fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import numpy as np
import psycopg

from collector.analytics.grid import grid_from_rows
from collector.analytics.model import SeriesWindow, UsageGrid
from collector.storage.billing_usage_store import load_usage_rows

__all__ = ["CHUNK_SERIES", "load_grid"]

Conn = psycopg.Connection[Any]
CHUNK_SERIES: Final = 2000


def load_grid(
    conn: Conn, windows: Sequence[SeriesWindow], start: datetime, end: datetime
) -> UsageGrid:
    """The summed 15-minute usage of ``windows`` in ``[start, end)``."""
    lo, hi = start.timestamp(), end.timestamp()
    ids = sorted({w.series_id for w in windows})
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


def empty_like(grid: UsageGrid) -> UsageGrid:
    """A grid of zeros on ``grid``'s buckets."""
    z = np.zeros_like(grid.quantity)
    return UsageGrid(grid.starts, z, z.copy(), np.zeros_like(grid.readings))
