"""Readings → bucketed usage: the pipeline of the usage core, for one or many series.

dedupe → (cumulative) replacements, glitches, resets/rollovers → quarantine above the physical
maximum → VEE of gaps → pro-rata split into buckets → flags, reading counts, gauge peaks.
Deterministic: the same readings (in any arrival order) always give the same buckets.
"""

from __future__ import annotations

import itertools
import mmap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from collector.errors import UsageError
from collector.usage.counters import SeriesParams, derive_counters
from collector.usage.glitches import ambiguous_drops
from collector.usage.intervals import (
    Intervals,
    cumulative_intervals,
    delta_intervals,
    gauge_intervals,
    glitch_mask,
    quarantine_over_max,
    replacement_segments,
    sort_readings,
)
from collector.usage.model import BucketUsage, MeterConfig, Replacement, SeriesKind, UsageFlag
from collector.usage.split import (
    Grid,
    add_cells,
    bucket_flags,
    bucket_index,
    or_cells,
    split_intervals,
)
from collector.usage.vee import estimate_gaps

__all__ = ["DerivedMatrix", "SeriesBatch", "derive_many", "derive_usage", "find_long_gaps"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_KIND_CODE = {SeriesKind.CUMULATIVE: 0, SeriesKind.DELTA: 1, SeriesKind.GAUGE: 2}


@dataclass(frozen=True, slots=True)
class SeriesBatch:
    """Readings of many series: series ``i`` owns ``ts/values[offsets[i]:offsets[i+1]]``."""

    offsets: I64
    ts: F64
    values: F64
    kinds: Sequence[SeriesKind]
    configs: Sequence[MeterConfig]
    replacements: Mapping[int, Sequence[Replacement]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.kinds)
        if self.offsets.shape[0] != n + 1 or len(self.configs) != n:
            raise UsageError("offsets, kinds and configs disagree on the number of series")
        if self.ts.shape != self.values.shape or int(self.offsets[-1]) != self.ts.shape[0]:
            raise UsageError("ts/values do not match offsets")
        if np.any(np.diff(self.offsets) < 0) or int(self.offsets[0]) != 0:
            raise UsageError("offsets must start at 0 and not decrease")
        if not (np.all(np.isfinite(self.ts)) and np.all(np.isfinite(self.values))):
            raise UsageError("reading times and values must be finite")


@dataclass(frozen=True, slots=True)
class DerivedMatrix:
    """Bucketed usage of every series of a batch: matrices ``(n_series, n_buckets)``."""

    edges: I64
    quantity: F64
    estimated: F64
    quarantined: F64
    coverage: F64
    reading_count: I64
    flags: I64
    peak: F64

    def series(self, i: int) -> BucketUsage:
        """Row ``i`` as a :class:`BucketUsage`."""
        return BucketUsage(
            self.edges[:-1],
            self.edges[1:],
            self.quantity[i],
            self.estimated[i],
            self.quarantined[i],
            self.coverage[i],
            self.reading_count[i],
            self.flags[i],
            self.peak[i],
        )


def _per_series(configs: Sequence[MeterConfig], attr: str, none: float = np.nan) -> F64:
    vals = [getattr(c, attr) for c in configs]
    return np.asarray([none if v is None else float(v) for v in vals], dtype=np.float64)


def _cumulative(
    batch: SeriesBatch, sid: I64, ts: F64, v: F64, max_rate: F64
) -> tuple[Intervals, tuple[I64, F64], tuple[I64, F64]]:
    """Intervals of the cumulative series, and (series, time) of the glitch readings and of
    the ambiguous decreases."""
    cfg = batch.configs
    seg = replacement_segments(sid, ts, batch.replacements)
    window = np.asarray([c.decision_window for c in cfg], dtype=np.int64)
    tol = _per_series(cfg, "jitter_tolerance")
    removed = glitch_mask(sid, seg, v, window, tol)
    horizon = np.asarray([c.glitch_window for c in cfg], dtype=np.int64)
    ambiguous = ambiguous_drops(sid, v, horizon, seg)
    glitch_s, glitch_t = sid[removed], ts[removed]
    amb_s, amb_t = sid[ambiguous], ts[ambiguous]
    if np.any(removed):
        ok = ~removed
        sid, ts, v, seg = sid[ok], ts[ok], v[ok], seg[ok]
    iv = cumulative_intervals(
        sid,
        seg,
        ts,
        v,
        register_max=_per_series(cfg, "register_max"),
        max_rate=max_rate,
        tolerance=tol,
        replacements=batch.replacements,
    )
    return iv, (glitch_s, glitch_t), (amb_s, amb_t)


def _sub_batch(batch: SeriesBatch, lo: int, hi: int) -> SeriesBatch:
    a, b = int(batch.offsets[lo]), int(batch.offsets[hi])
    reps = {s - lo: r for s, r in batch.replacements.items() if lo <= s < hi}
    return SeriesBatch(
        batch.offsets[lo : hi + 1] - a,
        batch.ts[a:b],
        batch.values[a:b],
        batch.kinds[lo:hi],
        batch.configs[lo:hi],
        reps,
    )


def _sparse_zeros(shape: tuple[int, int], dtype: type[np.float64] | type[np.int64]) -> Any:
    """A zero matrix that stays mostly unmapped: an anonymous mapping in small pages, so
    writing a few cells maps (and zeroes) only their pages. numpy's own large allocations are
    hinted for 2 MB pages, where each first write zeroes 2 MB."""
    size = shape[0] * shape[1] * np.dtype(dtype).itemsize
    if size < 1 << 22:
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, size), dtype=dtype).reshape(shape)


def _chunks(offsets: I64, chunk_readings: int) -> list[tuple[int, int]]:
    """Consecutive series ranges of about ``chunk_readings`` readings each."""
    n_series = offsets.shape[0] - 1
    if int(offsets[-1]) <= chunk_readings or n_series <= 1:
        return [(0, n_series)] if n_series else []
    cuts = np.searchsorted(offsets, np.arange(0, int(offsets[-1]), chunk_readings))
    bounds = sorted({0, n_series, *np.clip(cuts, 0, n_series).tolist()})
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def _gather(batch: SeriesBatch, ids: I64) -> SeriesBatch:
    """The series ``ids`` of ``batch`` as a batch of their own (renumbered 0…)."""
    counts = np.diff(batch.offsets)[ids]
    first = np.cumsum(counts) - counts
    rep = np.repeat(np.arange(ids.shape[0]), counts)
    take = batch.offsets[ids][rep] + (np.arange(rep.shape[0]) - first[rep])
    old = ids.tolist()
    return SeriesBatch(
        np.r_[0, np.cumsum(counts)].astype(np.int64),
        batch.ts[take],
        batch.values[take],
        [batch.kinds[i] for i in old],
        [batch.configs[i] for i in old],
        {k: batch.replacements[i] for k, i in enumerate(old) if i in batch.replacements},
    )


def derive_many(
    batch: SeriesBatch, edges: I64, tz: str = "UTC", *, chunk_readings: int = 65_536
) -> DerivedMatrix:
    """Usage of every series of ``batch`` in the buckets ``[edges[k], edges[k+1])``.

    Of readings with the same time, the lowest value is used. ``tz`` sets the local hours of the
    long-gap profile. Buckets outside the readings' span have coverage 0. Series are processed
    in groups of about ``chunk_readings`` readings (cache-sized arrays; same result).
    Cumulative series without replacements or gaps over ``max_gap_s`` take the vectorised fast path
    (:mod:`collector.usage.counters`); the others the general pipeline (same rules).
    """
    n_series = len(batch.kinds)
    nb = edges.shape[0] - 1
    if nb < 1 or np.any(np.diff(edges) <= 0):
        raise UsageError("edges must be increasing with at least one bucket")
    params = SeriesParams.of(batch.kinds, batch.configs)
    fast = params.kind == 0
    for s, reps in batch.replacements.items():
        if reps and 0 <= s < n_series:
            fast[s] = False
    fast_ids = np.flatnonzero(fast)
    if fast_ids.shape[0] == 0:
        return _derive_general(batch, edges, tz, chunk_readings)
    shape = (n_series, nb)
    out = DerivedMatrix(
        edges,
        np.empty(shape),
        _sparse_zeros(shape, np.float64),
        _sparse_zeros(shape, np.float64),
        np.empty(shape),
        np.empty(shape, dtype=np.int64),
        _sparse_zeros(shape, np.int64),
        np.full(shape, np.nan),
    )
    whole = fast_ids.shape[0] == n_series
    sub = batch if whole else _gather(batch, fast_ids)
    sub_params = params if whole else params.take(fast_ids)
    grid = Grid.of(edges)
    later = [np.flatnonzero(~fast)]
    for lo, hi in _chunks(sub.offsets, chunk_readings):
        a, b = int(sub.offsets[lo]), int(sub.offsets[hi])
        part = derive_counters(
            sub.offsets[lo : hi + 1] - a,
            sub.ts[a:b],
            sub.values[a:b],
            p=sub_params.take(slice(lo, hi)),
            grid=grid,
            tz=tz,
        )
        rows: slice | I64 = slice(lo, hi) if whole else fast_ids[lo:hi]
        out.quantity[rows] = part.quantity
        out.coverage[rows] = part.coverage
        out.reading_count[rows] = part.reading_count
        row_ids = np.arange(lo, hi) if whole else fast_ids[lo:hi]
        for dst, (r, c, w) in (
            (out.estimated, part.estimated),
            (out.quarantined, part.quarantined),
        ):
            if r.shape[0]:
                add_cells(dst.reshape(-1), row_ids[r] * nb + c, w)
        r, c, bits = part.flags
        if r.shape[0]:
            or_cells(out.flags.reshape(-1), row_ids[r] * nb + c, bits)
        if part.deferred.shape[0]:
            later.append(fast_ids[lo + part.deferred])
    general = np.unique(np.concatenate(later))
    if general.shape[0]:
        g = _derive_general(_gather(batch, general), edges, tz, chunk_readings)
        out.quantity[general] = g.quantity
        out.estimated[general] = g.estimated
        out.quarantined[general] = g.quarantined
        out.coverage[general] = g.coverage
        out.reading_count[general] = g.reading_count
        out.flags[general] = g.flags
        out.peak[general] = g.peak
    return out


def _derive_general(batch: SeriesBatch, edges: I64, tz: str, chunk_readings: int) -> DerivedMatrix:
    """The general pipeline (every kind and rule), group by group."""
    n_series = len(batch.kinds)
    nb = edges.shape[0] - 1
    bounds = _chunks(batch.offsets, chunk_readings)
    if len(bounds) == 1:
        return _derive_group(batch, edges, tz)
    out = DerivedMatrix(
        edges,
        np.empty((n_series, nb)),
        np.empty((n_series, nb)),
        np.empty((n_series, nb)),
        np.empty((n_series, nb)),
        np.empty((n_series, nb), dtype=np.int64),
        np.empty((n_series, nb), dtype=np.int64),
        np.empty((n_series, nb)),
    )
    for lo, hi in bounds:
        part = _derive_group(_sub_batch(batch, lo, hi), edges, tz)
        out.quantity[lo:hi] = part.quantity
        out.estimated[lo:hi] = part.estimated
        out.quarantined[lo:hi] = part.quarantined
        out.coverage[lo:hi] = part.coverage
        out.reading_count[lo:hi] = part.reading_count
        out.flags[lo:hi] = part.flags
        out.peak[lo:hi] = part.peak
    return out


def _derive_group(batch: SeriesBatch, edges: I64, tz: str) -> DerivedMatrix:
    n_series = len(batch.kinds)
    nb = edges.shape[0] - 1
    counts = np.diff(batch.offsets)
    sid0 = np.repeat(np.arange(n_series, dtype=np.int64), counts)
    sid, ts, v = sort_readings(sid0, batch.ts, batch.values)
    cfg = batch.configs
    kind = np.asarray([_KIND_CODE[SeriesKind(k)] for k in batch.kinds], dtype=np.int64)
    max_rate = _per_series(cfg, "max_rate_per_hour")
    rk = kind[sid]
    parts: list[Intervals] = []
    cm = rk == 0
    marks: list[tuple[tuple[I64, F64], int]] = []
    if np.any(cm):
        cum, glitches, ambiguous = _cumulative(batch, sid[cm], ts[cm], v[cm], max_rate)
        marks = [(glitches, int(UsageFlag.GLITCH)), (ambiguous, int(UsageFlag.AMBIGUOUS_DECREASE))]
        parts.append(cum)
    dm = rk == 1
    if np.any(dm):
        interval = _per_series(cfg, "expected_interval_s")
        parts.append(delta_intervals(sid[dm], ts[dm], v[dm], interval))
    gm = rk == 2
    if np.any(gm):
        parts.append(gauge_intervals(sid[gm], ts[gm], v[gm]))
    iv = Intervals.concat(parts, disjoint_series=True)
    iv = quarantine_over_max(iv, np.where(kind == 2, np.nan, max_rate))
    iv = estimate_gaps(
        iv,
        gap_threshold=np.asarray([c.gap_threshold_s for c in cfg], dtype=np.float64),
        short_gap_s=_per_series(cfg, "short_gap_s"),
        max_gap_s=_per_series(cfg, "max_gap_s"),
        interval_s=_per_series(cfg, "expected_interval_s"),
        profile_weeks=np.asarray([c.profile_weeks for c in cfg], dtype=np.int64),
        known_total=kind != 2,
        tz=tz,
    )
    sums = split_intervals(iv, edges, n_series)
    flags = bucket_flags(iv, edges, n_series)
    lengths = np.diff(edges).astype(np.float64)
    b = bucket_index(edges, ts)
    inside = (b >= 0) & (b < nb)
    flat = sid[inside] * nb + b[inside]
    reading_count = np.bincount(flat, minlength=n_series * nb).reshape(n_series, nb)
    for (mark_s, mark_t), bit in marks:
        if mark_t.shape[0]:
            gb = bucket_index(edges, mark_t)
            gin = (gb >= 0) & (gb < nb)
            fl = flags.reshape(-1)
            np.bitwise_or.at(fl, mark_s[gin] * nb + gb[gin], bit)
    peak = np.full(n_series * nb, -np.inf)
    gauge_in = inside & gm
    if np.any(gauge_in):
        np.maximum.at(peak, sid[gauge_in] * nb + b[gauge_in], v[gauge_in])
    peak[np.isneginf(peak)] = np.nan
    return DerivedMatrix(
        edges,
        sums.amount,
        sums.estimated,
        sums.quarantined,
        np.clip(sums.covered_s / lengths[None, :], 0.0, 1.0),
        reading_count.astype(np.int64),
        flags,
        peak.reshape(n_series, nb),
    )


def derive_usage(
    kind: SeriesKind | str,
    ts: F64,
    values: F64,
    edges: I64,
    *,
    config: MeterConfig | None = None,
    replacements: Sequence[Replacement] = (),
    tz: str = "UTC",
) -> BucketUsage:
    """Usage of one series in the buckets ``[edges[k], edges[k+1])``."""
    ts = np.asarray(ts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    batch = SeriesBatch(
        np.asarray([0, ts.shape[0]], dtype=np.int64),
        ts,
        values,
        (SeriesKind(kind),),
        (config or MeterConfig(),),
        {0: tuple(replacements)} if replacements else {},
    )
    return derive_many(batch, np.asarray(edges, dtype=np.int64), tz).series(0)


def find_long_gaps(ts: F64, config: MeterConfig) -> F64:
    """Start times of the gaps in ``ts`` (sorted) that VEE fills from a historical profile."""
    d = np.diff(ts)
    limit = max(config.gap_threshold_s, config.short_gap_s)
    long = (d > limit * (1 + 1e-9)) & (d <= config.max_gap_s)
    starts: F64 = ts[:-1][long]
    return starts
