"""Pro-rata split of usage intervals into buckets, for many series at once.

An interval's amount is spread uniformly over ``[t0, t1)``: the part in a bucket is
``amount × overlap / duration``. Implemented without loops: the running total of every series
is a piecewise-linear function of time; the usage of bucket ``[a, b)`` is ``F(b) − F(a)``.
Series are laid side by side on one time axis (series ``s`` shifted by ``s × span``), so one
``np.interp`` call evaluates all series at all edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.usage.intervals import Intervals

__all__ = ["BucketSums", "bucket_flags", "bucket_index", "split_intervals"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BucketSums:
    """Matrices ``(n_series, n_buckets)`` of the split measures."""

    amount: F64
    estimated: F64
    quarantined: F64
    covered_s: F64


def split_intervals(iv: Intervals, edges: I64, n_series: int) -> BucketSums:
    """Spread every interval over the buckets ``[edges[k], edges[k+1])`` pro rata by time."""
    nb = edges.shape[0] - 1
    shape = (n_series, nb)
    if iv.sid.shape[0] == 0 or nb <= 0:
        z = np.zeros(shape)
        return BucketSums(z, z.copy(), z.copy(), z.copy())
    base = min(float(edges[0]), float(iv.t0.min()))
    span = max(float(edges[-1]), float(iv.t1.max())) - base + 1.0
    shift = iv.sid.astype(np.float64) * span - base
    x0 = iv.t0 + shift
    x1 = iv.t1 + shift
    n = x0.shape[0]
    # drop the start point of an interval that begins where the previous one ended
    keep0 = np.ones(n, dtype=np.bool_)
    keep0[1:] = x0[1:] != x1[:-1]
    xp = np.empty(2 * n)
    xp[0::2] = x0
    xp[1::2] = x1
    keep = np.empty(2 * n, dtype=np.bool_)
    keep[0::2] = keep0
    keep[1::2] = True
    xp = xp[keep]
    q = (edges.astype(np.float64)[None, :] - base) + (
        np.arange(n_series, dtype=np.float64)[:, None] * span
    )
    qf = q.ravel()

    def measure(values: F64) -> F64:
        after = np.cumsum(values)
        yp = np.empty(2 * n)
        yp[0::2] = after - values
        yp[1::2] = after
        f = np.interp(qf, xp, yp[keep]).reshape(n_series, nb + 1)
        out: F64 = np.diff(f, axis=1)
        return out

    return BucketSums(
        measure(iv.amount),
        measure(iv.estimated),
        measure(iv.quarantined),
        measure(iv.t1 - iv.t0),
    )


def bucket_index(edges: I64, t: F64) -> I64:
    """Index of the bucket containing each time (−1 before, ``n_buckets`` after the grid)."""
    idx: I64 = np.searchsorted(edges, t, side="right").astype(np.int64) - 1
    nb = edges.shape[0] - 1
    idx[idx >= nb] = nb
    return idx


def bucket_flags(iv: Intervals, edges: I64, n_series: int) -> I64:
    """OR of the flags of all intervals overlapping each bucket ``(n_series, n_buckets)``."""
    nb = edges.shape[0] - 1
    out = np.zeros(n_series * max(nb, 0), dtype=np.int64)
    sel = np.nonzero(iv.flags)[0]
    if sel.shape[0] == 0 or nb <= 0:
        return out.reshape(n_series, max(nb, 0))
    b0 = np.searchsorted(edges, iv.t0[sel], side="right") - 1
    b1 = np.searchsorted(edges, iv.t1[sel], side="left") - 1
    b0 = np.clip(b0, 0, nb - 1)
    b1 = np.clip(b1, 0, nb - 1)
    inside = (iv.t1[sel] > edges[0]) & (iv.t0[sel] < edges[-1])
    sel, b0, b1 = sel[inside], b0[inside], b1[inside]
    counts = np.maximum(b1 - b0 + 1, 1)
    rep = np.repeat(np.arange(sel.shape[0]), counts)
    offs = np.arange(rep.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    flat = iv.sid[sel][rep] * nb + b0[rep] + offs
    np.bitwise_or.at(out, flat, iv.flags[sel][rep])
    return out.reshape(n_series, nb)
