"""Vectorised derivation of ordinary cumulative series: the fast path of ``derive_many``.

The same rules as the general pipeline (:mod:`~collector.usage.intervals`,
:mod:`~collector.usage.vee`, :mod:`~collector.usage.split`), written as a few whole-array
passes over the readings of many series: glitch removal → increases (jitter, rollover,
reset) → quarantine above the physical maximum → short-gap estimates → bucket sums. Rare
events (decreases, gaps, quarantines) are found with one vector test each and handled on
their small index sets; an interval inside one bucket is summed straight into it, longer
ones are cut at the bucket edges.

Series whose gaps need a historical profile or a hold-out (long or too-long gaps) are
returned as ``deferred``: the caller derives them with the general pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.usage.intervals import Intervals, sort_readings
from collector.usage.model import MeterConfig, SeriesKind, UsageFlag
from collector.usage.split import Grid, flag_cells
from collector.usage.vee import profile_pieces

__all__ = ["CounterBuckets", "SeriesParams", "derive_counters", "glitch_readings"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

KIND_CODE = {SeriesKind.CUMULATIVE: 0, SeriesKind.DELTA: 1, SeriesKind.GAUGE: 2}
_GLITCH = int(UsageFlag.GLITCH)
_GAP = int(UsageFlag.GAP)
_INTERP = int(UsageFlag.ESTIMATED_INTERPOLATED)
_PROFILE = int(UsageFlag.ESTIMATED_PROFILE)


def _floats(configs: Sequence[MeterConfig], attr: str) -> F64:
    vals = [getattr(c, attr) for c in configs]
    return np.asarray([np.nan if x is None else float(x) for x in vals], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SeriesParams:
    """Per-series settings as arrays indexed by series (built once per batch)."""

    kind: I64
    window: I64
    tolerance: F64
    register_max: F64
    max_rate: F64
    gap_threshold: F64
    short_gap: F64
    max_gap: F64
    profile_weeks: I64

    @staticmethod
    def of(kinds: Sequence[SeriesKind], configs: Sequence[MeterConfig]) -> SeriesParams:
        return SeriesParams(
            np.asarray([KIND_CODE[SeriesKind(k)] for k in kinds], dtype=np.int64),
            np.asarray([c.glitch_window for c in configs], dtype=np.int64),
            _floats(configs, "jitter_tolerance"),
            _floats(configs, "register_max"),
            _floats(configs, "max_rate_per_hour"),
            np.asarray([c.gap_threshold_s for c in configs], dtype=np.float64),
            _floats(configs, "short_gap_s"),
            _floats(configs, "max_gap_s"),
            np.asarray([c.profile_weeks for c in configs], dtype=np.int64),
        )

    def take(self, rows: slice | I64) -> SeriesParams:
        return SeriesParams(
            self.kind[rows],
            self.window[rows],
            self.tolerance[rows],
            self.register_max[rows],
            self.max_rate[rows],
            self.gap_threshold[rows],
            self.short_gap[rows],
            self.max_gap[rows],
            self.profile_weeks[rows],
        )


@dataclass(frozen=True, slots=True)
class CounterBuckets:
    """Bucketed usage of a group of series: dense matrices ``(n_series, n_buckets)`` and,
    for the mostly-zero measures, ``(rows, buckets, values)`` to add (flags: to OR) into zero
    matrices. Rows listed in ``deferred`` are to be derived by the general code."""

    quantity: F64
    coverage: F64
    reading_count: I64
    estimated: tuple[I64, I64, F64]
    quarantined: tuple[I64, I64, F64]
    flags: tuple[I64, I64, I64]
    deferred: I64


def _series_of(offsets: I64, idx: I64) -> I64:
    """Series of the readings ``idx``."""
    out: I64 = np.searchsorted(offsets, idx, side="right") - 1
    return out


def _singles(i: I64, v: F64, offsets: I64, p: SeriesParams, removed: B) -> None:
    """Decide isolated drops at once (no other drop within reach, so no interaction)."""
    s = _series_of(offsets, i)
    k = p.window[s]
    end = offsets[s + 1]
    base = v[i - 1] - p.tolerance[s]
    found = np.full(i.shape[0], -1, dtype=np.int64)
    for o in range(int(k.max()), 0, -1):  # the nearest return wins
        j = i + o
        ok = (o <= k) & (j < end)
        hit = ok & (v[np.where(ok, j, i)] >= base)
        found = np.where(hit, j, found)
    back = found >= 0
    lens = found[back] - i[back]
    if lens.shape[0]:
        first = np.cumsum(lens) - lens
        rep = np.repeat(np.arange(lens.shape[0]), lens)
        removed[np.repeat(i[back], lens) + (np.arange(rep.shape[0]) - first[rep])] = True
    q = i - 2
    spike = ~back & (q >= offsets[s]) & (v[i] >= v[np.maximum(q, 0)])
    removed[i[spike] - 1] = True


def _sequential(drops: I64, offsets: I64, v: F64, p: SeriesParams, removed: B) -> None:
    """Interacting drops, one at a time (the rule exactly as ``intervals.glitch_mask``)."""
    n = v.shape[0]
    skip_until = -1
    for i in drops.tolist():
        if i < skip_until or removed[i]:
            continue
        s = int(_series_of(offsets, np.asarray([i]))[0])
        lo, end = int(offsets[s]), int(offsets[s + 1])
        k = int(p.window[s])
        pp = i - 1
        while pp >= 0 and removed[pp]:
            pp -= 1
        if pp < lo:
            continue
        base = v[pp] - p.tolerance[s]
        hi = min(i + k + 1, n, end)
        ahead = np.nonzero(v[i + 1 : hi] >= base)[0]
        if ahead.shape[0]:
            j = i + 1 + int(ahead[0])
            removed[i:j] = True
            skip_until = j
            continue
        q = pp - 1
        while q >= 0 and removed[q]:
            q -= 1
        if q >= lo and v[i] >= v[q]:
            removed[pp] = True


def glitch_readings(v: F64, offsets: I64, p: SeriesParams) -> I64:
    """Indices of the readings ``intervals.glitch_mask`` ignores (series ``s`` owns readings
    ``offsets[s]:offsets[s+1]``, no replacements). Drops far from any other drop are decided
    with vector operations; clusters of nearby drops one by one."""
    n = v.shape[0]
    if n < 2 or int(p.window.max(initial=0)) == 0:
        return np.zeros(0, dtype=np.int64)
    drops = np.flatnonzero(v[1:] < v[:-1]) + 1
    if drops.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    series = _series_of(offsets, drops)
    drops = drops[(offsets[series] < drops) & (p.window[series] > 0)]
    if drops.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    reach = int(p.window.max()) + 3
    apart = np.diff(drops) > reach
    single = np.r_[True, apart] & np.r_[apart, True]
    removed = np.zeros(n, dtype=np.bool_)
    if np.any(single):
        _singles(drops[single], v, offsets, p, removed)
    if not np.all(single):
        _sequential(drops[~single], offsets, v, p, removed)
    out: I64 = np.flatnonzero(removed)
    return out


def _increases(down: I64, amount: F64, dur: F64, v: F64, s: I64, p: SeriesParams) -> I64:
    """Decreases → jitter (0), rollover or reset increase, in place; returns their flags."""
    prev, cur, d = v[down], v[down + 1], amount[down]
    tol = p.tolerance[s]
    jitter = (-d <= tol) & (tol > 0)
    rmax, rate = p.register_max[s], p.max_rate[s]
    reach = np.where(np.isnan(rate), 0.1 * rmax, rate * dur[down] / 3600.0)
    roll = ~jitter & ~np.isnan(rmax) & (rmax - prev <= reach)
    reset = ~jitter & ~roll
    amount[down] = np.where(jitter, 0.0, np.where(roll, rmax - prev + cur, np.maximum(cur, 0.0)))
    flags: I64 = (
        np.where(jitter, int(UsageFlag.JITTER), 0)
        | np.where(roll, int(UsageFlag.ROLLOVER), 0)
        | np.where(reset, int(UsageFlag.RESET), 0)
    )
    return flags


def _profile(
    k: int,
    s: int,
    ik: list[I64],
    ib: list[I64],
    gaps: I64,
    over: I64,
    t0: F64,
    t1: F64,
    amount: F64,
    offsets: I64,
    p: SeriesParams,
    tz: str,
) -> Intervals | None:
    """Profile estimate of the long gap ``k`` of series ``s`` (``vee.profile_pieces`` on the
    series' actual intervals: no gap, nothing quarantined)."""
    own = np.arange(int(offsets[s]), int(offsets[s + 1]) - 1)
    own = own[~np.isin(own, gaps) & ~np.isin(own, over)]
    history = Intervals.build(np.zeros(own.shape[0], dtype=np.int64), t0[own], t1[own], amount[own])
    flags = 0
    for idx, bits in zip(ik, ib, strict=True):
        flags |= int(np.bitwise_or.reduce(bits[idx == k], initial=0))
    one = np.asarray([k])
    gap = Intervals.build(
        np.zeros(1, dtype=np.int64), t0[one], t1[one], amount[one], np.asarray([flags])
    )
    return profile_pieces(gap, 0, history, weeks=int(p.profile_weeks[s]), tz=tz, known_total=True)


def derive_counters(
    offsets: I64, ts: F64, values: F64, p: SeriesParams, grid: Grid, tz: str = "UTC"
) -> CounterBuckets:
    """Usage of cumulative series without replacements (``offsets`` starts at 0).

    Work arrays use a padded row layout: cell ``row × W + bucket + 1`` with
    ``W = n_buckets + 3``, so times before or after the grid land in padding columns."""
    ns = offsets.shape[0] - 1
    nb = grid.n_buckets
    width = nb + 3
    cells = ns * width
    rowbase = np.repeat(np.arange(ns, dtype=np.int64) * width, np.diff(offsets))
    v = values
    if ts.shape[0] > 1:
        bad = np.flatnonzero(ts[1:] <= ts[:-1])
        if bad.shape[0] and np.any(rowbase[bad] == rowbase[bad + 1]):
            sid, ts, v = sort_readings(rowbase // width, ts, v)
            offsets = np.r_[0, np.cumsum(np.bincount(sid, minlength=ns))].astype(np.int64)
            rowbase = sid * width
    col0, col1 = grid.columns(ts)
    c0 = col0 + rowbase  # cell of the bucket holding each reading
    c1 = col1 + rowbase  # cell after the last bucket an interval ending here touches
    del col0, col1, rowbase
    counts = np.bincount(c0, minlength=cells)
    flag_cells_: list[I64] = []
    gone = glitch_readings(v, offsets, p)
    if gone.shape[0]:
        flag_cells_.append(c0[gone])
        keep = np.ones(ts.shape[0], dtype=np.bool_)
        keep[gone] = False
        removed = np.bincount(_series_of(offsets, gone), minlength=ns)
        offsets = offsets - np.r_[0, np.cumsum(removed)]
        ts, v, c0, c1 = ts[keep], v[keep], c0[keep], c1[keep]
    n = ts.shape[0]
    t0, t1 = ts[:-1], ts[1:]
    dur = t1 - t0
    amount = v[1:] - v[:-1]
    cell = c0[:-1]
    inner = offsets[1:-1]
    cross = inner[(inner > 0) & (inner < n)] - 1  # pairs of two different series
    amount[cross] = 0.0
    dur[cross] = 0.0
    ik: list[I64] = []  # flagged intervals and their flags
    ib: list[I64] = []
    down = np.flatnonzero(amount < 0)
    if down.shape[0]:
        ik.append(down)
        ib.append(_increases(down, amount, dur, v, cell[down] // width, p))
    over = np.zeros(0, dtype=np.int64)
    held = np.zeros(0)
    if not np.all(np.isnan(p.max_rate)):
        rate_k = p.max_rate[cell // width]
        with np.errstate(invalid="ignore"):
            over = np.flatnonzero(
                ~np.isnan(rate_k) & (amount > rate_k * dur / 3600.0 * (1 + 1e-9) + 1e-12)
            )
        held = amount[over].copy()
        amount[over] = 0.0
        ik.append(over)
        ib.append(np.full(over.shape[0], int(UsageFlag.OVER_MAX_RATE), dtype=np.int64))
    thr = p.gap_threshold
    if float(thr.min()) == float(thr.max()):
        gaps = np.flatnonzero(dur > float(thr[0]) * (1 + 1e-9))
    else:
        gaps = np.flatnonzero(dur > thr[cell // width] * (1 + 1e-9))
    deferred = np.zeros(0, dtype=np.int64)
    est = np.zeros(0, dtype=np.int64)
    profiled: list[tuple[int, Intervals]] = []
    if gaps.shape[0]:
        s, g = cell[gaps] // width, dur[gaps]
        free = ~np.isin(gaps, over)
        long = free & (g > p.short_gap[s]) & (p.profile_weeks[s] > 0)
        deferred = np.unique(s[g > p.max_gap[s]])  # hold-outs: the general pipeline
        fallback = np.zeros(gaps.shape[0], dtype=np.bool_)
        for j in np.flatnonzero(long & ~np.isin(s, deferred)).tolist():
            got = _profile(
                int(gaps[j]), int(s[j]), ik, ib, gaps, over, t0, t1, amount, offsets, p, tz
            )
            if got is None:
                fallback[j] = True
            else:
                profiled.append((int(s[j]), got))
        interp = free & (~long | fallback)
        est = gaps[interp]
        ik.append(gaps)
        ib.append(np.where(interp, _GAP | _INTERP, np.where(long, _GAP | _PROFILE, _GAP)))
        for j in np.flatnonzero(long & ~fallback).tolist():
            amount[gaps[j]] = 0.0  # replaced by its profile pieces
    multi = np.flatnonzero(c1[1:] - cell != 1)  # intervals over several buckets
    multi = multi[dur[multi] > 0]

    def cut(idx: I64) -> tuple[I64, F64, I64]:
        """Padded cells, overlap seconds and interval of the pieces of intervals ``idx``."""
        c = cell[idx]
        rep, b, ov = grid.pieces(t0[idx], t1[idx], c % width - 1, c1[idx + 1] % width - 2)
        return (c // width * width)[rep] + b + 1, ov, rep

    def share(idx: I64, weights: F64) -> tuple[I64, F64]:
        cells_, ov, rep = cut(idx)
        return cells_, weights[rep] * ov / dur[idx][rep]

    est_c, est_w = share(est, amount[est])
    q_c, q_w = share(over, held)
    if profiled:
        rows = np.concatenate([np.full(iv.sid.shape[0], r, dtype=np.int64) for r, iv in profiled])
        p0 = np.concatenate([iv.t0 for _, iv in profiled])
        p1 = np.concatenate([iv.t1 for _, iv in profiled])
        a0, _ = grid.columns(p0)
        _, a1 = grid.columns(p1)
        rep, b, ov = grid.pieces(p0, p1, a0 - 1, a1 - 2)
        prof_c = rows[rep] * width + b + 1
        prof_w = np.concatenate([iv.amount for _, iv in profiled])[rep] * ov / (p1 - p0)[rep]
        est_c, est_w = np.r_[est_c, prof_c], np.r_[est_w, prof_w]
    flagged = np.concatenate(ik) if ik else np.zeros(0, dtype=np.int64)
    iv = Intervals.build(
        cell[flagged] // width,
        t0[flagged],
        t1[flagged],
        np.zeros(flagged.shape[0]),
        np.concatenate(ib) if ib else np.zeros(0, dtype=np.int64),
    )
    if multi.shape[0]:
        m_c, m_ov, m_rep = cut(multi)
        m_w = amount[multi][m_rep] * m_ov / dur[multi][m_rep]
        amount[multi] = 0.0
        dur[multi] = 0.0
    cell[cross] = 0
    qty = np.bincount(cell, amount, minlength=cells)
    cov = np.bincount(cell, dur, minlength=cells)
    if multi.shape[0]:
        np.add.at(qty, m_c, m_w)
        np.add.at(cov, m_c, m_ov)
    if profiled:
        np.add.at(qty, prof_c, prof_w)
    grid_cols = (slice(None), slice(1, nb + 1))
    coverage = cov.reshape(ns, width)[grid_cols] / (
        grid.step if grid.step > 0 else np.diff(grid.edges_f)[None, :]
    )
    np.minimum(coverage, 1.0, out=coverage)
    f_flat, f_bits = flag_cells(iv, grid.edges)
    f_rows, f_cols = f_flat // nb, f_flat % nb
    if flag_cells_:
        gc = np.concatenate(flag_cells_)
        col = gc % width - 1
        ok = (col >= 0) & (col < nb)
        f_rows = np.r_[f_rows, gc[ok] // width]
        f_cols = np.r_[f_cols, col[ok]]
        f_bits = np.r_[f_bits, np.full(int(ok.sum()), _GLITCH, dtype=np.int64)]
    return CounterBuckets(
        qty.reshape(ns, width)[grid_cols],
        coverage,
        counts.reshape(ns, width)[grid_cols],
        (est_c // width, est_c % width - 1, est_w),
        (q_c // width, q_c % width - 1, q_w),
        (f_rows, f_cols, f_bits),
        deferred,
    )
