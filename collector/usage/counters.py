"""Vectorised derivation of ordinary cumulative series: the fast path of ``derive_many``.

The same rules as the general pipeline (:mod:`~collector.usage.intervals`,
:mod:`~collector.usage.vee`, :mod:`~collector.usage.split`), written as a few whole-array
passes over the readings of many series: glitch removal → increases (jitter, rollover,
reset) → quarantine above the physical maximum → gap estimates → bucket sums. Rare
events (decreases, gaps, quarantines) are found with one vector test each and handled on
their small index sets; an interval inside one bucket is summed straight into it, longer
ones are cut at the bucket edges.

Long gaps get the same-hour profile of :func:`collector.usage.vee.profile_pieces`. Series
with a gap longer than ``max_gap_s`` (held out, not estimated) are returned as ``deferred``:
the caller derives them with the general pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from collector.usage.glitches import ambiguous_drops, glitch_readings, series_of
from collector.usage.intervals import Intervals, sort_readings
from collector.usage.model import MeterConfig, SeriesKind, UsageFlag
from collector.usage.split import Grid, add_cells, flag_cells
from collector.usage.vee import profile_pieces

__all__ = ["CounterBuckets", "SeriesParams", "derive_counters"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

KIND_CODE = {SeriesKind.CUMULATIVE: 0, SeriesKind.DELTA: 1, SeriesKind.GAUGE: 2}
_GLITCH = int(UsageFlag.GLITCH)
_AMBIGUOUS = int(UsageFlag.AMBIGUOUS_DECREASE)
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
    horizon: I64  # readings within which a drop that rises past its old value is ambiguous

    @staticmethod
    def of(kinds: Sequence[SeriesKind], configs: Sequence[MeterConfig]) -> SeriesParams:
        return SeriesParams(
            np.asarray([KIND_CODE[SeriesKind(k)] for k in kinds], dtype=np.int64),
            np.asarray([c.decision_window for c in configs], dtype=np.int64),
            _floats(configs, "jitter_tolerance"),
            _floats(configs, "register_max"),
            _floats(configs, "max_rate_per_hour"),
            np.asarray([c.gap_threshold_s for c in configs], dtype=np.float64),
            _floats(configs, "short_gap_s"),
            _floats(configs, "max_gap_s"),
            np.asarray([c.profile_weeks for c in configs], dtype=np.int64),
            np.asarray([c.glitch_window for c in configs], dtype=np.int64),
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
            self.horizon[rows],
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


@dataclass(slots=True)
class _Work:
    """Intervals between consecutive kept readings of a group of series (mutable work arrays).

    Interval ``k`` runs from reading ``k`` to ``k + 1``; the ``cross`` ones join two series and
    carry nothing. Cells use a padded row layout ``row × width + bucket + 1`` with
    ``width = n_buckets + 3``, so times before or after the grid land in padding columns."""

    width: int
    offsets: I64
    v: F64
    t0: F64
    t1: F64
    dur: F64
    amount: F64
    cell: I64  # cell of the bucket holding t0
    end: I64  # per reading: cell after the last bucket an interval ending there touches
    cross: I64
    flagged: list[I64] = field(default_factory=list)  # intervals and their flags
    bits: list[I64] = field(default_factory=list)

    def flag(self, idx: I64, bits: I64) -> None:
        self.flagged.append(idx)
        self.bits.append(bits)

    def series(self, idx: I64) -> I64:
        out: I64 = self.cell[idx] // self.width
        return out

    def flags_of(self, k: int) -> int:
        """OR of the flags recorded for interval ``k``."""
        out = 0
        for idx, bits in zip(self.flagged, self.bits, strict=True):
            out |= int(np.bitwise_or.reduce(bits[idx == k], initial=0))
        return out

    def cut(self, idx: I64, grid: Grid) -> tuple[I64, F64, I64]:
        """Cells, overlap seconds and interval (position in ``idx``) of the bucket pieces."""
        c = self.cell[idx]
        w = self.width
        rep, b, ov = grid.pieces(self.t0[idx], self.t1[idx], c % w - 1, self.end[idx + 1] % w - 2)
        cells: I64 = (c // w * w)[rep] + b + 1
        return cells, ov, rep

    def share(self, idx: I64, weights: F64, grid: Grid) -> tuple[I64, F64]:
        """Cells and pro-rata shares of ``weights`` of intervals ``idx``."""
        cells, ov, rep = self.cut(idx, grid)
        return cells, weights[rep] * ov / self.dur[idx][rep]


def _readings(
    offsets: I64, ts: F64, values: F64, grid: Grid
) -> tuple[I64, F64, F64, I64, I64, I64]:
    """Sorted, de-duplicated readings with their cells: ``(offsets, ts, values, cell of the
    bucket holding each, cell after the last bucket an interval ending at it touches, reading
    counts per cell)``."""
    ns = offsets.shape[0] - 1
    width = grid.n_buckets + 3
    rowbase = np.repeat(np.arange(ns, dtype=np.int64) * width, np.diff(offsets))
    if ts.shape[0] > 1:
        bad = np.flatnonzero(ts[1:] <= ts[:-1])
        if bad.shape[0] and np.any(rowbase[bad] == rowbase[bad + 1]):
            sid, ts, values = sort_readings(rowbase // width, ts, values)
            offsets = np.r_[0, np.cumsum(np.bincount(sid, minlength=ns))].astype(np.int64)
            rowbase = sid * width
    c0, c1 = grid.columns(ts)
    c0 += rowbase
    c1 += rowbase
    counts: I64 = np.bincount(c0, minlength=ns * width)
    return offsets, ts, values, c0, c1, counts


def _intervals(offsets: I64, ts: F64, v: F64, *, c0: I64, c1: I64, width: int) -> _Work:
    """The work arrays of readings ``ts``/``v`` (cells ``c0``/``c1`` from :func:`_readings`)."""
    n = ts.shape[0]
    t0, t1 = ts[:-1], ts[1:]
    inner = offsets[1:-1]
    work = _Work(
        width,
        offsets,
        v,
        t0,
        t1,
        t1 - t0,
        v[1:] - v[:-1],
        c0[:-1],
        c1,
        inner[(inner > 0) & (inner < n)] - 1,
    )
    work.amount[work.cross] = 0.0
    work.dur[work.cross] = 0.0
    return work


def _decreases(work: _Work, p: SeriesParams) -> None:
    """Decreases → jitter (0), rollover or reset increase (in place, flagged)."""
    down = np.flatnonzero(work.amount < 0)
    if down.shape[0] == 0:
        return
    s = work.series(down)
    prev, cur, d = work.v[down], work.v[down + 1], work.amount[down]
    tol = p.tolerance[s]
    jitter = (-d <= tol) & (tol > 0)
    rmax, rate = p.register_max[s], p.max_rate[s]
    reach = np.where(np.isnan(rate), 0.1 * rmax, rate * work.dur[down] / 3600.0)
    roll = ~jitter & ~np.isnan(rmax) & (rmax - prev <= reach)
    reset = ~jitter & ~roll
    work.amount[down] = np.where(
        jitter, 0.0, np.where(roll, rmax - prev + cur, np.maximum(cur, 0.0))
    )
    bits = (
        np.where(jitter, int(UsageFlag.JITTER), 0)
        | np.where(roll, int(UsageFlag.ROLLOVER), 0)
        | np.where(reset, int(UsageFlag.RESET), 0)
    )
    work.flag(down, np.asarray(bits, dtype=np.int64))


def _quarantine(work: _Work, p: SeriesParams) -> tuple[I64, F64]:
    """Increases above the physical maximum: taken out of ``amount``; ``(intervals, amounts)``."""
    if np.all(np.isnan(p.max_rate)):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    rate = p.max_rate[work.series(np.arange(work.dur.shape[0]))]
    with np.errstate(invalid="ignore"):
        limit = rate * work.dur / 3600.0 * (1 + 1e-9) + 1e-12
        over = np.flatnonzero(~np.isnan(rate) & (work.amount > limit))
    held = work.amount[over].copy()
    work.amount[over] = 0.0
    work.flag(over, np.full(over.shape[0], int(UsageFlag.OVER_MAX_RATE), dtype=np.int64))
    return over, held


def _profile(
    work: _Work, k: int, s: int, *, gaps: I64, over: I64, p: SeriesParams, tz: str
) -> Intervals | None:
    """Profile estimate of the long gap ``k`` of series ``s`` (``vee.profile_pieces`` on the
    series' actual intervals: no gap, nothing quarantined)."""
    own = np.arange(int(work.offsets[s]), int(work.offsets[s + 1]) - 1)
    own = own[~np.isin(own, gaps) & ~np.isin(own, over)]
    zeros = np.zeros(own.shape[0], dtype=np.int64)
    history = Intervals.build(zeros, work.t0[own], work.t1[own], work.amount[own])
    one = np.asarray([k])
    gap = Intervals.build(
        np.zeros(1, dtype=np.int64),
        work.t0[one],
        work.t1[one],
        work.amount[one],
        np.asarray([work.flags_of(k)], dtype=np.int64),
    )
    return profile_pieces(gap, 0, history, weeks=int(p.profile_weeks[s]), tz=tz, known_total=True)


def _gaps(
    work: _Work, p: SeriesParams, over: I64, tz: str
) -> tuple[I64, I64, list[tuple[int, Intervals]]]:
    """Flag gaps: ``(series to defer, interpolated intervals, (series, profile pieces))``.
    A profiled gap's amount is replaced by its pieces (set to 0 here)."""
    thr = p.gap_threshold
    if float(thr.min()) == float(thr.max()):
        gaps = np.flatnonzero(work.dur > float(thr[0]) * (1 + 1e-9))
    else:
        gaps = np.flatnonzero(
            work.dur > thr[work.series(np.arange(work.dur.shape[0]))] * (1 + 1e-9)
        )
    if gaps.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), gaps, []
    s, g = work.series(gaps), work.dur[gaps]
    free = ~np.isin(gaps, over)
    long = free & (g > p.short_gap[s]) & (p.profile_weeks[s] > 0)
    deferred = np.unique(s[g > p.max_gap[s]])  # hold-outs: the general pipeline
    fallback = np.zeros(gaps.shape[0], dtype=np.bool_)
    profiled: list[tuple[int, Intervals]] = []
    for j in np.flatnonzero(long & ~np.isin(s, deferred)).tolist():
        got = _profile(work, int(gaps[j]), int(s[j]), gaps=gaps, over=over, p=p, tz=tz)
        if got is None:
            fallback[j] = True
        else:
            profiled.append((int(s[j]), got))
    interp = free & (~long | fallback)
    work.flag(gaps, np.where(interp, _GAP | _INTERP, np.where(long, _GAP | _PROFILE, _GAP)))
    work.amount[gaps[long & ~fallback]] = 0.0
    return deferred, gaps[interp], profiled


def _profile_cells(
    profiled: list[tuple[int, Intervals]], grid: Grid, width: int
) -> tuple[I64, F64]:
    rows = np.concatenate([np.full(iv.sid.shape[0], r, dtype=np.int64) for r, iv in profiled])
    p0 = np.concatenate([iv.t0 for _, iv in profiled])
    p1 = np.concatenate([iv.t1 for _, iv in profiled])
    a0, _ = grid.columns(p0)
    _, a1 = grid.columns(p1)
    rep, b, ov = grid.pieces(p0, p1, a0 - 1, a1 - 2)
    amounts = np.concatenate([iv.amount for _, iv in profiled])
    cells: I64 = rows[rep] * width + b + 1
    return cells, amounts[rep] * ov / (p1 - p0)[rep]


def derive_counters(
    offsets: I64, ts: F64, values: F64, *, p: SeriesParams, grid: Grid, tz: str = "UTC"
) -> CounterBuckets:
    """Usage of cumulative series without replacements (``offsets`` starts at 0)."""
    ns = offsets.shape[0] - 1
    nb = grid.n_buckets
    width = nb + 3
    offsets, ts, v, c0, c1, counts = _readings(offsets, ts, values, grid)
    gone = glitch_readings(v, offsets, p)
    glitch_cells = c0[gone]
    sid_all = np.repeat(np.arange(ns, dtype=np.int64), np.diff(offsets))
    ambiguous_cells = c0[ambiguous_drops(sid_all, v, p.horizon)]
    if gone.shape[0]:
        keep = np.ones(ts.shape[0], dtype=np.bool_)
        keep[gone] = False
        removed = np.bincount(series_of(offsets, gone), minlength=ns)
        offsets = offsets - np.r_[0, np.cumsum(removed)]
        ts, v, c0, c1 = ts[keep], v[keep], c0[keep], c1[keep]
    work = _intervals(offsets, ts, v, c0=c0, c1=c1, width=width)
    _decreases(work, p)
    over, held = _quarantine(work, p)
    deferred, est, profiled = _gaps(work, p, over, tz)
    est_c, est_w = work.share(est, work.amount[est], grid)
    if profiled:
        prof_c, prof_w = _profile_cells(profiled, grid, width)
        est_c, est_w = np.r_[est_c, prof_c], np.r_[est_w, prof_w]
    q_c, q_w = work.share(over, held, grid)
    flagged = np.concatenate(work.flagged) if work.flagged else np.zeros(0, dtype=np.int64)
    f_flat, f_bits = flag_cells(
        Intervals.build(
            work.series(flagged),
            work.t0[flagged],
            work.t1[flagged],
            np.zeros(flagged.shape[0]),
            np.concatenate(work.bits) if work.bits else np.zeros(0, dtype=np.int64),
        ),
        grid.edges,
    )
    qty, cov = _sums(work, grid)
    if profiled:
        add_cells(qty, prof_c, prof_w)
    cols = (slice(None), slice(1, nb + 1))
    coverage = cov.reshape(ns, width)[cols] / (
        grid.step if grid.step > 0 else np.diff(grid.edges_f)[None, :]
    )
    np.minimum(coverage, 1.0, out=coverage)
    g_cells = np.r_[glitch_cells, ambiguous_cells]
    g_bits = np.r_[
        np.full(glitch_cells.shape[0], _GLITCH, dtype=np.int64),
        np.full(ambiguous_cells.shape[0], _AMBIGUOUS, dtype=np.int64),
    ]
    g_col = g_cells % width - 1
    g_ok = (g_col >= 0) & (g_col < nb)
    return CounterBuckets(
        qty.reshape(ns, width)[cols],
        coverage,
        counts.reshape(ns, width)[cols],
        (est_c // width, est_c % width - 1, est_w),
        (q_c // width, q_c % width - 1, q_w),
        (
            np.r_[f_flat // nb, g_cells[g_ok] // width],
            np.r_[f_flat % nb, g_col[g_ok]],
            np.r_[f_bits, g_bits[g_ok]],
        ),
        deferred,
    )


def _sums(work: _Work, grid: Grid) -> tuple[F64, F64]:
    """Amount and covered seconds per padded cell: an interval inside one bucket adds to it
    directly, a longer one is cut at the bucket edges."""
    cells = (work.offsets.shape[0] - 1) * work.width
    multi = np.flatnonzero(work.end[1:] - work.cell != 1)
    multi = multi[work.dur[multi] > 0]
    m_c, m_ov, m_rep = work.cut(multi, grid)
    m_w = work.amount[multi][m_rep] * m_ov / work.dur[multi][m_rep]
    work.amount[multi] = 0.0
    work.dur[multi] = 0.0
    work.cell[work.cross] = 0
    qty = np.bincount(work.cell, work.amount, minlength=cells).astype(np.float64, copy=False)
    cov = np.bincount(work.cell, work.dur, minlength=cells).astype(np.float64, copy=False)
    if multi.shape[0]:
        add_cells(qty, m_c, m_w)
        add_cells(cov, m_c, m_ov)
    return qty, cov
