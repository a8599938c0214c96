"""Glitch rule of cumulative registers, vectorised: which readings are transient outliers.

The rule is ``intervals.glitch_mask``'s (see docs/usage.md §2.3); this version works on many
series without replacements at once and decides the isolated drops with vector operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collector.usage.counters import SeriesParams

__all__ = ["ambiguous_drops", "glitch_readings", "series_of"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


def series_of(offsets: I64, idx: I64) -> I64:
    """Series of the readings ``idx``."""
    out: I64 = np.searchsorted(offsets, idx, side="right") - 1
    return out


def _singles(i: I64, v: F64, offsets: I64, p: SeriesParams) -> I64:
    """Decide isolated drops at once (no other drop within reach, so no interaction):
    the readings they remove."""
    if i.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    s = series_of(offsets, i)
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
    first = np.cumsum(lens) - lens
    rep = np.repeat(np.arange(lens.shape[0]), lens)
    runs = np.repeat(i[back], lens) + (np.arange(rep.shape[0]) - first[rep])
    q = i - 2
    spike = ~back & (q >= offsets[s]) & (v[i] >= v[np.maximum(q, 0)])
    out: I64 = np.r_[runs, i[spike] - 1]
    return out


def _sequential(drops: I64, offsets: I64, v: F64, p: SeriesParams, removed: B) -> None:
    """Interacting drops, one at a time (the rule exactly as ``intervals.glitch_mask``)."""
    n = v.shape[0]
    skip_until = -1
    for i in drops.tolist():
        if i < skip_until or removed[i]:
            continue
        s = int(series_of(offsets, np.asarray([i]))[0])
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
    """Indices (distinct, unsorted) of the readings ``intervals.glitch_mask`` ignores
    (series ``s`` owns readings ``offsets[s]:offsets[s+1]``, no replacements). Drops far from
    any other drop are decided with vector operations; clusters of nearby drops one by one."""
    n = v.shape[0]
    if n < 2 or int(p.window.max(initial=0)) == 0:
        return np.zeros(0, dtype=np.int64)
    drops = np.flatnonzero(v[1:] < v[:-1]) + 1
    if drops.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    series = series_of(offsets, drops)
    drops = drops[(offsets[series] < drops) & (p.window[series] > 0)]
    if drops.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    reach = int(p.window.max()) + 3
    apart = np.diff(drops) > reach
    single = np.r_[True, apart] & np.r_[apart, True]
    out = _singles(drops[single], v, offsets, p)
    if not np.all(single):  # far from the singles: no interaction with them
        removed = np.zeros(n, dtype=np.bool_)
        _sequential(drops[~single], offsets, v, p, removed)
        out = np.r_[out, np.flatnonzero(removed)]
    return out


def ambiguous_drops(sid: I64, v: F64, horizon: I64, seg: I64 | None = None) -> B:
    """Mask of the ambiguous decreases: reading ``i`` is below ``v[i−1]`` (same series and
    segment) and one of the next ``horizon[series]`` readings rises past ``v[i−1]``.

    Such a drop is a glitch of a register or a reset of a counter that grew fast since; the
    meter's ``counter_kind`` decides, and the bucket is flagged for staff review either way.
    """
    n = v.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    if n < 2:
        return out
    key = sid if seg is None else sid * (int(seg.max(initial=0)) + 1) + seg
    drops = np.flatnonzero((key[1:] == key[:-1]) & (v[1:] < v[:-1])) + 1
    if drops.shape[0] == 0:
        return out
    k = horizon[sid[drops]]
    before = v[drops - 1]
    found = np.zeros(drops.shape[0], dtype=np.bool_)
    for o in range(1, int(k.max(initial=0)) + 1):
        j = drops + o
        ok = (o <= k) & (j < n)
        jj = np.where(ok, j, drops)
        found |= ok & (key[jj] == key[drops]) & (v[jj] > before)
    out[drops[found]] = True
    return out
