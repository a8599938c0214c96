"""Usage analytics: pure numpy cores over the usage engine's 15-minute usage.

Public API::

    grid = grid_from_rows(series, bucket, quantity, estimated, readings,
                          start=..., end=..., windows=[SeriesWindow(series_id, from, to), ...])
    timeline(grid, "1d", tz) -> Timeline          15m / 1h / 1d / 1w / 1mo / 1y, DST-correct
    comparison_windows(start, end, tz) -> Windows previous window and the same one a year ago
    compare_periods(current, previous, year_ago) -> Comparison
    load_profile(grid, tz, holidays) -> LoadProfile  average day, heat map, load duration,
                                                   peak demand and when, load factor
    tou_breakdown(grid, plan) -> TouBreakdown     usage per time-of-use period of a plan

No I/O and no clock: storage (``collector.storage.analytics_queries``) turns a scope into
series windows and rows; the API (``collector.api.analytics_routes``) serves the results.
"""

from __future__ import annotations

from collector.analytics.grid import grid_edges, grid_from_rows, in_windows, matrix_from_rows
from collector.analytics.model import BUCKET_S, Granularity, ScopeKind, SeriesWindow, UsageGrid
from collector.analytics.profile import LoadProfile, Peak, downsample_curve, load_profile
from collector.analytics.timeline import (
    Comparison,
    Timeline,
    Windows,
    compare_periods,
    comparison_windows,
    timeline,
)
from collector.analytics.tou import TouBreakdown, tou_breakdown

__all__ = [
    "BUCKET_S",
    "Comparison",
    "Granularity",
    "LoadProfile",
    "Peak",
    "ScopeKind",
    "SeriesWindow",
    "Timeline",
    "TouBreakdown",
    "UsageGrid",
    "Windows",
    "compare_periods",
    "comparison_windows",
    "downsample_curve",
    "grid_edges",
    "grid_from_rows",
    "in_windows",
    "load_profile",
    "matrix_from_rows",
    "timeline",
    "tou_breakdown",
]
