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
from collector.usage.split import Grid, bucket_flags

__all__ = ["CounterBuckets", "SeriesParams", "derive_counters", "glitch_readings"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

KIND_CODE = {SeriesKind.CUMULATIVE: 0, SeriesKind.DELTA: 1, SeriesKind.GAUGE: 2}
_GLITCH = int(UsageFlag.GLITCH)
_GAP = int(UsageFlag.GAP)
_INTERP = int(UsageFlag.ESTIMATED_INTERPOLATED)


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
    """Bucketed usage of a group of series, matrices ``(n_series, n_buckets)``; ``None``
    stands for all zeros. Rows listed in ``deferred`` are to be derived by the general code."""

    quantity: F64
    estimated: F64 | None
    quarantined: F64 | None
    coverage: F64
    reading_count: I64
    flags: I64 | None
    deferred: I64


def _singles(i: I64, sid: I64, v: F64, offsets: I64, p: SeriesParams, removed: B) -> None:
    """Decide isolated drops at once (no other drop within reach, so no interaction)."""
    s = sid[i]
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


def _sequential(drops: I64, sid: I64, v: F64, p: SeriesParams, removed: B) -> None:
    """Interacting drops, one at a time (the rule exactly as ``intervals.glitch_mask``)."""
    n = v.shape[0]
    skip_until = -1
    for i in drops.tolist():
        if i < skip_until or removed[i]:
            continue
        s = int(sid[i])
        k = int(p.window[s])
        pp = i - 1
        while pp >= 0 and removed[pp]:
            pp -= 1
        if pp < 0 or sid[pp] != s:
            continue
        base = v[pp] - p.tolerance[s]
        hi = min(i + k + 1, n)
        ahead = np.nonzero((v[i + 1 : hi] >= base) & (sid[i + 1 : hi] == s))[0]
        if ahead.shape[0]:
            j = i + 1 + int(ahead[0])
            removed[i:j] = True
            skip_until = j
            continue
        q = pp - 1
        while q >= 0 and removed[q]:
            q -= 1
        if q >= 0 and sid[q] == s and v[i] >= v[q]:
            removed[pp] = True


def glitch_readings(sid: I64, v: F64, offsets: I64, p: SeriesParams) -> I64:
    """Indices of the readings ``intervals.glitch_mask`` ignores (series without
    replacements). Drops far from any other drop are decided with vector operations; the
    clusters of nearby drops one by one."""
    n = v.shape[0]
    if n < 2 or int(p.window.max(initial=0)) == 0:
        return np.zeros(0, dtype=np.int64)
    drops = np.flatnonzero(v[1:] < v[:-1]) + 1
    drops = drops[sid[drops] == sid[drops - 1]]
    drops = drops[p.window[sid[drops]] > 0]
    if drops.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    reach = int(p.window.max()) + 3
    apart = np.diff(drops) > reach
    single = np.r_[True, apart] & np.r_[apart, True]
    removed = np.zeros(n, dtype=np.bool_)
    if np.any(single):
        _singles(drops[single], sid, v, offsets, p, removed)
    if not np.all(single):
        _sequential(drops[~single], sid, v, p, removed)
    out: I64 = np.flatnonzero(removed)
    return out


def derive_counters(offsets: I64, ts: F64, values: F64, p: SeriesParams, grid: Grid) -> CounterBuckets:
    """Usage of cumulative series without replacements (``offsets`` starts at 0)."""
    ns = offsets.shape[0] - 1
    nb = grid.n_buckets
    cells = ns * nb
    sid = np.repeat(np.arange(ns, dtype=np.int64), np.diff(offsets))
    v = values
    if ts.shape[0] > 1:
        bad = np.flatnonzero(ts[1:] <= ts[:-1])
        if bad.shape[0] and np.any(sid[bad] == sid[bad + 1]):
            sid, ts, v = sort_readings(sid, ts, v)
            offsets = np.r_[0, np.cumsum(np.bincount(sid, minlength=ns))].astype(np.int64)
    fl, ce = grid.locate(ts)
    if fl.shape[0] and int(fl.min()) >= 0 and int(fl.max()) < nb:
        counts = np.bincount(sid * nb + fl, minlength=cells)
    else:
        m = (fl >= 0) & (fl < nb)
        counts = np.bincount(sid[m] * nb + fl[m], minlength=cells)
    flag_cells: list[I64] = []
    flag_bits: list[I64] = []
    gone = glitch_readings(sid, v, offsets, p)
    if gone.shape[0]:
        gs, gb = sid[gone], fl[gone]
        ok = (gb >= 0) & (gb < nb)
        flag_cells.append(gs[ok] * nb + gb[ok])
        flag_bits.append(np.full(int(ok.sum()), _GLITCH, dtype=np.int64))
        keep = np.ones(ts.shape[0], dtype=np.bool_)
        keep[gone] = False
        offsets = offsets - np.r_[0, np.cumsum(np.bincount(gs, minlength=ns))]
        sid, ts, v, fl, ce = sid[keep], ts[keep], v[keep], fl[keep], ce[keep]
    n = ts.shape[0]
    t0, t1 = ts[:-1], ts[1:]
    dur = t1 - t0
    amount = v[1:] - v[:-1]
    inner = offsets[1:-1]
    cross = inner[(inner > 0) & (inner < n)] - 1  # pairs of two different series
    amount[cross] = 0.0
    dur[cross] = 0.0
    ik: list[I64] = []  # flagged intervals and their flags
    ib: list[I64] = []
    down = np.flatnonzero(amount < 0)
    if down.shape[0]:
        s = sid[down]
        prev, cur, d = v[down], v[down + 1], amount[down]
        tol = p.tolerance[s]
        jitter = (-d <= tol) & (tol > 0)
        rmax, rate = p.register_max[s], p.max_rate[s]
        reach = np.where(np.isnan(rate), 0.1 * rmax, rate * dur[down] / 3600.0)
        roll = ~jitter & ~np.isnan(rmax) & (rmax - prev <= reach)
        reset = ~jitter & ~roll
        amount[down] = np.where(jitter, 0.0, np.where(roll, rmax - prev + cur, np.maximum(cur, 0.0)))
        ik.append(down)
        ib.append(
            np.where(jitter, int(UsageFlag.JITTER), 0)
            | np.where(roll, int(UsageFlag.ROLLOVER), 0)
            | np.where(reset, int(UsageFlag.RESET), 0)
        )
    over = np.zeros(0, dtype=np.int64)
    held = np.zeros(0)
    if not np.all(np.isnan(p.max_rate)):
        rate_k = p.max_rate[sid[:-1]]
        with np.errstate(invalid="ignore"):
            over = np.flatnonzero(
                ~np.isnan(rate_k) & (amount > rate_k * dur / 3600.0 * (1 + 1e-9) + 1e-12)
            )
        held = amount[over].copy()
        amount[over] = 0.0
        ik.append(over)
        ib.append(np.full(over.shape[0], int(UsageFlag.OVER_MAX_RATE), dtype=np.int64))
    thr = p.gap_threshold
    if ns and float(thr.min()) == float(thr.max()):
        gaps = np.flatnonzero(dur > float(thr[0]) * (1 + 1e-9))
    else:
        gaps = np.flatnonzero(dur > thr[sid[:-1]] * (1 + 1e-9))
    deferred = np.zeros(0, dtype=np.int64)
    est = np.zeros(0, dtype=np.int64)
    if gaps.shape[0]:
        s, g = sid[gaps], dur[gaps]
        free = ~np.isin(gaps, over)
        long = free & (g > p.short_gap[s]) & (p.profile_weeks[s] > 0)
        deferred = np.unique(s[long | (g > p.max_gap[s])])
        est = gaps[free & ~long]
        ik.append(gaps)
        ib.append(np.where(free & ~long, _GAP | _INTERP, _GAP))
    b0 = fl[:-1]
    b1 = ce[1:] - 1
    cell = sid[:-1] * nb + b0
    cell[cross] = 0
    multi = np.flatnonzero((b0 != b1) | (b0 < 0) | (b0 >= nb))
    multi = multi[dur[multi] > 0]

    def spread(idx: I64, weights: F64 | None) -> F64:
        """Bucket sums of ``weights`` (None: the covered seconds) of intervals ``idx``."""
        rep, c, ov = grid.pieces(sid[idx], t0[idx], t1[idx], b0[idx], b1[idx])
        w = ov if weights is None else weights[rep] * ov / dur[idx][rep]
        return np.bincount(c, w, minlength=cells)

    estimated = spread(est, amount[est]) if est.shape[0] else None
    quarantined = spread(over, held) if over.shape[0] else None
    extra_q = extra_c = None
    if multi.shape[0]:
        extra_q = spread(multi, amount[multi])
        extra_c = spread(multi, None)
        amount[multi] = 0.0
        dur[multi] = 0.0
        cell[multi] = 0
    qty = np.bincount(cell, amount, minlength=cells)
    cov = np.bincount(cell, dur, minlength=cells)
    if extra_q is not None and extra_c is not None:
        qty += extra_q
        cov += extra_c
    if grid.step > 0:
        cov /= grid.step
    else:
        cov = (cov.reshape(ns, nb) / np.diff(grid.edges_f)[None, :]).reshape(-1)
    np.minimum(cov, 1.0, out=cov)
    flags: I64 | None = None
    if ik:
        k = np.concatenate(ik)
        if k.shape[0]:
            iv = Intervals.build(sid[k], t0[k], t1[k], np.zeros(k.shape[0]), np.concatenate(ib))
            flags = bucket_flags(iv, grid.edges, ns).reshape(-1)
    if flag_cells:
        if flags is None:
            flags = np.zeros(cells, dtype=np.int64)
        np.bitwise_or.at(flags, np.concatenate(flag_cells), np.concatenate(flag_bits))
    shape = (ns, nb)
    return CounterBuckets(
        qty.reshape(shape),
        None if estimated is None else estimated.reshape(shape),
        None if quarantined is None else quarantined.reshape(shape),
        cov.reshape(shape),
        counts.astype(np.int64, copy=False).reshape(shape),
        None if flags is None else flags.reshape(shape),
        deferred,
    )
