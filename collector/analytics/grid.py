"""Flat interval-usage rows of many series → one scope's usage grid (pure, numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from collector.analytics.model import BUCKET_S, SeriesWindow, UsageGrid
from collector.errors import AnalyticsError

__all__ = ["grid_edges", "grid_from_rows", "in_windows", "matrix_from_rows"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def grid_edges(start: float, end: float) -> tuple[int, int]:
    """``[start, end)`` widened to whole 15-minute buckets (Unix s)."""
    if not end > start:
        raise AnalyticsError(f"empty range: end {end} <= start {start}")
    lo = int(np.floor(start / BUCKET_S)) * BUCKET_S
    hi = int(np.ceil(end / BUCKET_S)) * BUCKET_S
    return lo, hi


def in_windows(series: I64, bucket: I64, windows: Sequence[SeriesWindow]) -> npt.NDArray[np.bool_]:
    """Which rows ``(series[i], bucket[i])`` fall in one of the windows of their series.

    Windows of one series must not overlap (subscriptions of a meter never do). Vectorised:
    one sort of the windows and one ``searchsorted`` of the rows, whatever their number."""
    if not windows or series.shape[0] == 0:
        return np.zeros(series.shape[0], dtype=np.bool_)
    ws = np.asarray([w.series_id for w in windows], dtype=np.int64)
    lo_b = int(bucket.min())
    big = np.int64(1) << 40
    wa = np.asarray([lo_b if w.start is None else max(w.start, lo_b) for w in windows], np.int64)
    wb = np.asarray([big if w.end is None else w.end for w in windows], dtype=np.int64)
    order = np.lexsort((wa, ws))
    ws, wa, wb = ws[order], wa[order] - lo_b, wb[order]
    shift = np.int64(1) << 22  # series_id * 2**22 + offset: offsets below 48 days of seconds…
    span = int(bucket.max()) - lo_b + 1
    if span >= int(shift):  # …or a wider key when the rows span more
        shift = np.int64(1) << int(np.ceil(np.log2(span + 1)))
    wkey = ws * shift + np.minimum(wa, shift - 1)
    rkey = series * shift + (bucket - lo_b)
    pos = np.searchsorted(wkey, rkey, side="right") - 1
    ok = pos >= 0
    p = np.where(ok, pos, 0)
    keep: npt.NDArray[np.bool_] = ok & (ws[p] == series) & (bucket < wb[p])
    keep &= bucket - lo_b >= wa[p]
    return keep


def grid_from_rows(
    series: I64,
    bucket: I64,
    quantity: F64,
    estimated: F64,
    readings: I64,
    *,
    start: float,
    end: float,
    windows: Sequence[SeriesWindow],
) -> UsageGrid:
    """The summed usage of the rows inside ``windows`` on the 15-minute grid of ``[start, end)``."""
    lo, hi = grid_edges(start, end)
    n = (hi - lo) // BUCKET_S
    keep = in_windows(series, bucket, windows) & (bucket >= lo) & (bucket < hi)
    j = (bucket[keep] - lo) // BUCKET_S
    return UsageGrid(
        np.arange(lo, hi, BUCKET_S, dtype=np.int64),
        np.bincount(j, weights=quantity[keep], minlength=n).astype(np.float64),
        np.bincount(j, weights=estimated[keep], minlength=n).astype(np.float64),
        np.bincount(j, weights=readings[keep].astype(np.float64), minlength=n).astype(np.int64),
    )


def matrix_from_rows(
    series: I64,
    bucket: I64,
    values: F64,
    *,
    series_ids: I64,
    start: float,
    end: float,
) -> F64:
    """``values`` as a dense ``(len(series_ids), buckets)`` matrix on the grid of ``[start, end)``
    (rows of other series or outside the range are ignored; missing buckets are 0)."""
    lo, hi = grid_edges(start, end)
    n = (hi - lo) // BUCKET_S
    order = np.argsort(series_ids)
    ids = series_ids[order]
    pos = np.searchsorted(ids, series)
    pos_c = np.minimum(pos, max(ids.shape[0] - 1, 0))
    keep = (ids.shape[0] > 0) & (bucket >= lo) & (bucket < hi)
    if ids.shape[0]:
        keep &= ids[pos_c] == series
    out = np.zeros((series_ids.shape[0], n))
    out[order[pos_c[keep]], (bucket[keep] - lo) // BUCKET_S] = values[keep]
    return out
