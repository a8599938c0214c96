"""Readings → usage intervals ``[t0, t1)`` with an amount each, for many series at once.

Input arrays are sorted by (series index, time). Per-series settings are arrays indexed by the
series index. Nothing here looks at buckets; :mod:`collector.usage.split` does that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.usage.model import Replacement, UsageFlag

__all__ = [
    "Intervals",
    "cumulative_intervals",
    "delta_intervals",
    "gauge_intervals",
    "glitch_mask",
    "quarantine_over_max",
    "replacement_segments",
    "sort_readings",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Intervals:
    """Usage intervals of many series (struct of arrays, sorted by (sid, t0), non-overlapping)."""

    sid: I64
    t0: F64
    t1: F64
    amount: F64
    estimated: F64
    quarantined: F64
    flags: I64

    @staticmethod
    def build(sid: I64, t0: F64, t1: F64, amount: F64, flags: I64 | None = None) -> Intervals:
        n = sid.shape[0]
        return Intervals(
            sid,
            t0,
            t1,
            amount,
            np.zeros(n),
            np.zeros(n),
            flags if flags is not None else np.zeros(n, dtype=np.int64),
        )

    @staticmethod
    def concat(parts: Sequence[Intervals], *, disjoint_series: bool = False) -> Intervals:
        """All parts merged and sorted by (sid, t0). ``disjoint_series``: each part is sorted
        and no two parts share a series (a cheap stable sort on sid then suffices)."""
        if not parts:
            z = np.zeros(0)
            return Intervals(np.zeros(0, np.int64), z, z, z, z, z, np.zeros(0, np.int64))
        if len(parts) == 1:
            return parts[0]
        sid = np.concatenate([p.sid for p in parts])
        t0 = np.concatenate([p.t0 for p in parts])
        order = np.argsort(sid, kind="stable") if disjoint_series else np.lexsort((t0, sid))
        return Intervals(
            sid[order],
            t0[order],
            np.concatenate([p.t1 for p in parts])[order],
            np.concatenate([p.amount for p in parts])[order],
            np.concatenate([p.estimated for p in parts])[order],
            np.concatenate([p.quarantined for p in parts])[order],
            np.concatenate([p.flags for p in parts])[order],
        )

    def take(self, mask: B | I64) -> Intervals:
        return Intervals(
            self.sid[mask],
            self.t0[mask],
            self.t1[mask],
            self.amount[mask],
            self.estimated[mask],
            self.quarantined[mask],
            self.flags[mask],
        )


def sort_readings(sid: I64, ts: F64, values: F64) -> tuple[I64, F64, F64]:
    """Readings sorted by (series, time); of several readings with the same time the lowest
    value is kept (deterministic whatever the arrival order)."""
    same = sid[1:] == sid[:-1]
    if np.any(same & (ts[1:] < ts[:-1])):
        order = np.lexsort((ts, sid))
        sid, ts, values = sid[order], ts[order], values[order]
        same = sid[1:] == sid[:-1]
    dup = same & (ts[1:] == ts[:-1])
    if np.any(dup):
        starts = np.nonzero(np.r_[True, ~dup])[0]
        values = np.minimum.reduceat(values, starts)
        sid, ts = sid[starts], ts[starts]
    return sid, ts, values


def replacement_segments(
    sid: I64, ts: F64, replacements: Mapping[int, Sequence[Replacement]]
) -> I64:
    """Per reading, how many replacements of its series happened at or before it."""
    seg = np.zeros(sid.shape[0], dtype=np.int64)
    if not replacements:
        return seg
    bounds = np.searchsorted(sid, np.arange(int(sid.max(initial=-1)) + 2))
    for s, reps in replacements.items():
        if not reps or s + 1 >= bounds.shape[0]:
            continue
        lo, hi = int(bounds[s]), int(bounds[s + 1])
        ats = np.sort(np.asarray([r.at for r in reps], dtype=np.float64))
        seg[lo:hi] = np.searchsorted(ats, ts[lo:hi], side="right")
    return seg


def glitch_mask(sid: I64, seg: I64, v: F64, window: I64, tolerance: F64) -> B:
    """Readings to ignore as transient outliers of a cumulative register.

    Rule 1 (downward glitch): reading ``i`` is lower than the last accepted reading ``p`` and a
    reading ``j`` among the next ``window`` readings is back at ``>= v[p] − tolerance``: the
    readings ``i … j−1`` are glitches. Rule 2 (upward spike): reading ``i`` is lower than
    ``v[i−1]`` but ``>= v[i−2]``: reading ``i−1`` was a spike. Anything else is a real decrease
    (reset, rollover or jitter), decided later. Loops only over decreases (rare in real data).
    """
    n = v.shape[0]
    removed = np.zeros(n, dtype=np.bool_)
    if n < 2:
        return removed
    same = (sid[1:] == sid[:-1]) & (seg[1:] == seg[:-1])
    drops = np.nonzero(same & (v[1:] < v[:-1]))[0] + 1
    if drops.shape[0] == 0:
        return removed
    block = np.r_[True, ~same].cumsum()  # consecutive readings of one series segment
    skip_until = -1
    for i in drops.tolist():
        if i < skip_until or removed[i]:
            continue
        k = int(window[sid[i]])
        if k == 0:
            continue
        p = i - 1
        while p >= 0 and removed[p]:
            p -= 1
        if p < 0 or block[p] != block[i]:
            continue
        base = v[p] - tolerance[sid[i]]
        hi = min(i + k + 1, n)
        ahead = np.nonzero((v[i + 1 : hi] >= base) & (block[i + 1 : hi] == block[i]))[0]
        if ahead.shape[0]:
            j = i + 1 + int(ahead[0])
            removed[i:j] = True
            skip_until = j
            continue
        q = p - 1
        while q >= 0 and removed[q]:
            q -= 1
        if q >= 0 and block[q] == block[i] and v[i] >= v[q]:
            removed[p] = True
    return removed


def cumulative_intervals(
    sid: I64,
    seg: I64,
    ts: F64,
    v: F64,
    *,
    register_max: F64,
    max_rate: F64,
    tolerance: F64,
    replacements: Mapping[int, Sequence[Replacement]],
) -> Intervals:
    """Increase between consecutive accepted readings of cumulative registers.

    A decrease is jitter (``<= tolerance``: no change), a rollover (``register_max`` set and the
    previous value within reach of it: increase ``register_max − prev + new``) or a reset
    (increase = the new value, Prometheus semantics). Across a replacement the increase is
    ``(old_final − prev) + (new − new_initial)``, summed over the replacements in between.
    """
    pair = sid[1:] == sid[:-1]
    idx = np.nonzero(pair)[0]
    s = sid[idx + 1]
    t0, t1 = ts[idx], ts[idx + 1]
    prev, cur = v[idx], v[idx + 1]
    d = cur - prev
    flags = np.zeros(d.shape[0], dtype=np.int64)
    crossing = seg[idx] != seg[idx + 1]
    down = (d < 0) & ~crossing
    if np.any(down):
        tol = tolerance[s]
        jitter = down & (-d <= tol) & (tol > 0)
        rmax = register_max[s]
        rate = max_rate[s]
        reach = np.where(np.isnan(rate), 0.1 * rmax, rate * (t1 - t0) / 3600.0)
        roll = down & ~jitter & ~np.isnan(rmax) & (rmax - prev <= reach)
        reset = down & ~jitter & ~roll
        d = np.where(jitter, 0.0, d)
        d = np.where(roll, rmax - prev + cur, d)
        d = np.where(reset, np.maximum(cur, 0.0), d)
        flags |= np.where(jitter, int(UsageFlag.JITTER), 0)
        flags |= np.where(roll, int(UsageFlag.ROLLOVER), 0)
        flags |= np.where(reset, int(UsageFlag.RESET), 0)
    for k in np.nonzero(crossing)[0].tolist():
        reps = sorted(replacements.get(int(s[k]), ()), key=lambda r: r.at)
        between = [r for r in reps if t0[k] < r.at <= t1[k]]
        inc = 0.0
        base = float(prev[k])
        for r in between:
            inc += r.old_final - base
            base = r.new_initial
        inc += float(cur[k]) - base
        flags[k] |= int(UsageFlag.REPLACEMENT)
        if inc < 0:
            inc = 0.0
            flags[k] |= int(UsageFlag.NEGATIVE_CLAMPED)
        d[k] = inc
    return Intervals.build(s, t0, t1, d, flags)


def delta_intervals(sid: I64, ts: F64, v: F64, interval_s: F64) -> Intervals:
    """Each delta reading covers the time since the previous reading of its series
    (the first one: ``expected_interval_s`` before it)."""
    first = np.r_[True, sid[1:] != sid[:-1]]
    t0 = np.empty_like(ts)
    t0[1:] = ts[:-1]
    t0[first] = ts[first] - interval_s[sid[first]]
    return Intervals.build(sid.copy(), t0, ts.copy(), v.copy())


def gauge_intervals(sid: I64, ts: F64, v: F64) -> Intervals:
    """Trapezoid integral (unit·hours) between consecutive readings of a gauge."""
    idx = np.nonzero(sid[1:] == sid[:-1])[0]
    t0, t1 = ts[idx], ts[idx + 1]
    amount = (v[idx] + v[idx + 1]) * 0.5 * (t1 - t0) / 3600.0
    return Intervals.build(sid[idx + 1], t0, t1, amount)


def quarantine_over_max(iv: Intervals, max_rate: F64) -> Intervals:
    """Move amounts above ``max_rate × duration`` out of the billable amount (flagged)."""
    rate = max_rate[iv.sid]
    limit = rate * (iv.t1 - iv.t0) / 3600.0
    over = ~np.isnan(rate) & (iv.amount > limit * (1 + 1e-9) + 1e-12)
    if not np.any(over):
        return iv
    return Intervals(
        iv.sid,
        iv.t0,
        iv.t1,
        np.where(over, 0.0, iv.amount),
        iv.estimated,
        np.where(over, iv.amount, iv.quarantined),
        iv.flags | np.where(over, int(UsageFlag.OVER_MAX_RATE), 0),
    )
