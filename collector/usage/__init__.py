"""Usage engine core: readings of a series (counter, delta or gauge) → usage per time bucket.

Pure code: numpy arrays in, arrays out, no I/O, no clock. Times are Unix seconds (UTC).

Public API::

    derive_usage(kind, ts, values, edges, config=MeterConfig(), replacements=(), tz="UTC")
        -> BucketUsage                      one series, any bucket grid
    derive_many(batch: SeriesBatch, edges, tz="UTC") -> DerivedMatrix
        many series at once on one grid (vectorised; the billing-close path)
    bucket_edges(start, end, resolution, tz) -> int64 edges (15m / 1h / 1d / 1mo, DST-correct)
    rollup(starts_15m, values, resolution, tz) -> (starts, ends, sums)   15-min → coarser
    find_long_gaps(ts, config) -> start times of gaps that need a historical profile
    LoadPlanner(max_readings)            how many windows one refresh step loads together

Storage (``collector.storage.usage_store``) keeps ``usage_15m`` up to date from these and
offers ``usage_for_series`` / ``load_usage_matrix`` (→ ``UsageMatrix``) to billing.
"""

from __future__ import annotations

from collector.usage.calendar import bucket_edges, rollup, rollup_matrix
from collector.usage.derive import (
    DerivedMatrix,
    SeriesBatch,
    derive_many,
    derive_usage,
    find_long_gaps,
)
from collector.usage.model import (
    BUCKET_15M_S,
    BucketUsage,
    MeterConfig,
    Replacement,
    Resolution,
    SeriesKind,
    UsageFlag,
    UsageMatrix,
)
from collector.usage.working_set import LoadPlanner

__all__ = [
    "BUCKET_15M_S",
    "BucketUsage",
    "DerivedMatrix",
    "LoadPlanner",
    "MeterConfig",
    "Replacement",
    "Resolution",
    "SeriesBatch",
    "SeriesKind",
    "UsageFlag",
    "UsageMatrix",
    "bucket_edges",
    "derive_many",
    "derive_usage",
    "find_long_gaps",
    "rollup",
    "rollup_matrix",
]
