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

__all__ = [
    "BucketSums",
    "Grid",
    "add_cells",
    "bucket_flags",
    "bucket_index",
    "flag_cells",
    "or_cells",
    "split_intervals",
]

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
    dur = iv.t1 - iv.t0
    q = (edges.astype(np.float64)[None, :] - base) + (
        np.arange(n_series, dtype=np.float64)[:, None] * span
    )
    qf = q.ravel()
    # F(q) = C_before[k] + amount[k] × clip((q − x0[k]) / dur[k], 0, 1), k the last interval
    # starting at or before q. x0 is sorted (series side by side).
    k = np.searchsorted(x0, qf, side="right") - 1
    k[k < 0] = 0
    # a query before its own series' first interval lands on another series: F = 0 there
    other = iv.sid[k] != np.repeat(np.arange(n_series, dtype=np.int64), nb + 1)
    frac = np.clip((qf - x0[k]) / dur[k], 0.0, 1.0)
    first = np.r_[True, iv.sid[1:] != iv.sid[:-1]]
    group = np.cumsum(first) - 1

    def measure(values: F64) -> F64:
        if not np.any(values):
            return np.zeros(shape)
        before = np.cumsum(values) - values
        before -= before[first][group]  # running total restarts at every series
        f = before[k] + values[k] * frac
        f[other] = 0.0
        out: F64 = np.diff(f.reshape(n_series, nb + 1), axis=1)
        if values.min() >= 0:
            np.maximum(out, 0.0, out=out)  # rounding noise below zero
        return out

    return BucketSums(
        measure(iv.amount), measure(iv.estimated), measure(iv.quarantined), measure(dur)
    )


def bucket_index(edges: I64, t: F64) -> I64:
    """Index of the bucket containing each time (−1 before, ``n_buckets`` after the grid)."""
    nb = edges.shape[0] - 1
    steps = np.diff(edges)
    if nb > 0 and np.all(steps == steps[0]):
        idx: I64 = np.floor((t - float(edges[0])) / float(steps[0])).astype(np.int64)
        idx[idx < 0] = -1
    else:
        idx = np.searchsorted(edges, t, side="right").astype(np.int64) - 1
    idx[idx >= nb] = nb
    return idx


def flag_cells(iv: Intervals, edges: I64) -> tuple[I64, I64]:
    """``(row × n_buckets + bucket, flags)`` for every bucket each flagged interval overlaps."""
    nb = edges.shape[0] - 1
    sel = np.nonzero(iv.flags)[0]
    if sel.shape[0] == 0 or nb <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    b0 = np.searchsorted(edges, iv.t0[sel], side="right") - 1
    b1 = np.searchsorted(edges, iv.t1[sel], side="left") - 1
    b0 = np.clip(b0, 0, nb - 1)
    b1 = np.clip(b1, 0, nb - 1)
    inside = (iv.t1[sel] > edges[0]) & (iv.t0[sel] < edges[-1])
    sel, b0, b1 = sel[inside], b0[inside], b1[inside]
    counts = np.maximum(b1 - b0 + 1, 1)
    rep = np.repeat(np.arange(sel.shape[0]), counts)
    offs = np.arange(rep.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    flat: I64 = iv.sid[sel][rep] * nb + b0[rep] + offs
    bits: I64 = iv.flags[sel][rep]
    return flat, bits


def bucket_flags(iv: Intervals, edges: I64, n_series: int) -> I64:
    """OR of the flags of all intervals overlapping each bucket ``(n_series, n_buckets)``."""
    nb = max(edges.shape[0] - 1, 0)
    out = np.zeros(n_series * nb, dtype=np.int64)
    flat, bits = flag_cells(iv, edges)
    np.bitwise_or.at(out, flat, bits)
    return out.reshape(n_series, nb)


@dataclass(frozen=True, slots=True)
class Grid:
    """A bucket grid ``[edges[k], edges[k+1])`` with fast bucket look-ups (arithmetic when
    the buckets have equal lengths, binary search otherwise)."""

    edges: I64
    edges_f: F64
    step: float  # common bucket length, 0.0 when the lengths differ

    @staticmethod
    def of(edges: I64) -> Grid:
        steps = np.diff(edges)
        regular = steps.shape[0] > 0 and bool(np.all(steps == steps[0]))
        return Grid(edges, edges.astype(np.float64), float(steps[0]) if regular else 0.0)

    @property
    def n_buckets(self) -> int:
        return int(self.edges.shape[0]) - 1

    def columns(self, t: F64) -> tuple[I64, I64]:
        """Bucket positions of each time, shifted by one so that they are never negative:
        ``floor + 1`` where ``floor`` is the bucket holding the time (−1 before the grid,
        ``n_buckets`` or ``n_buckets + 1`` after it), and ``ceil + 1`` where ``ceil − 1`` is
        the last bucket an interval ending at the time touches. Both lie in
        ``[0, n_buckets + 2]``."""
        nb = self.n_buckets
        if self.step > 0:
            q = t - (self.edges_f[0] - self.step)
            q /= self.step
            if t.shape[0] and (q.min() < 0.0 or q.max() > nb + 2.0):
                np.clip(q, 0.0, nb + 2.0, out=q)
            fl: I64 = q.astype(np.int64)  # truncation is floor for q >= 0
            ce: I64 = np.ceil(q, out=q).astype(np.int64)
            return fl, ce
        fl = np.searchsorted(self.edges_f, t, side="right").astype(np.int64)
        ce = np.searchsorted(self.edges_f, t, side="left").astype(np.int64) + 1
        return fl, ce

    def pieces(self, t0: F64, t1: F64, b0: I64, b1: I64) -> tuple[I64, I64, F64]:
        """Intervals ``[t0, t1)`` (first bucket ``b0``, last bucket ``b1`` as :meth:`locate`
        gives them) cut at the bucket edges: ``(interval, bucket, overlap s)`` per piece
        inside the grid."""
        nb = self.n_buckets
        lo_b = np.maximum(b0, 0)
        hi_b = np.minimum(b1, nb - 1)
        inside = (t1 > self.edges_f[0]) & (t0 < self.edges_f[-1])
        cnt = np.where(inside, np.maximum(hi_b - lo_b + 1, 0), 0)
        rep = np.repeat(np.arange(cnt.shape[0], dtype=np.int64), cnt)
        first = np.cumsum(cnt) - cnt
        b = lo_b[rep] + (np.arange(rep.shape[0], dtype=np.int64) - first[rep])
        lo = np.maximum(t0[rep], self.edges_f[b])
        hi = np.minimum(t1[rep], self.edges_f[b + 1])
        return rep, b, hi - lo


def add_cells(dst: F64, idx: I64, w: F64) -> None:
    """``dst[idx] += w`` with repeated indices summed (a few cells of a large flat array)."""
    u, inv = np.unique(idx, return_inverse=True)
    dst[u] += np.bincount(inv.reshape(-1), w, minlength=u.shape[0])


def or_cells(dst: I64, idx: I64, bits: I64) -> None:
    """``dst[idx] |= bits`` with repeated indices OR-ed together."""
    order = np.lexsort((bits, idx))
    idx, bits = idx[order], bits[order]
    u, first = np.unique(idx, return_index=True)
    dst[u] |= np.bitwise_or.reduceat(bits, first)
