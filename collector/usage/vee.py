"""VEE (validation, estimation, editing) of gaps in usage intervals.

A gap is an interval longer than ``gap_factor × expected_interval_s``. For counters and delta
series the usage across a gap is *known* (the register difference, or the delta reported
after it): only its distribution over time is estimated. For gauges the integral across a gap
is itself an estimate.

* short gap (``<= short_gap_s``): linear interpolation — a counter's increase is spread
  uniformly (the register is interpolated linearly between the readings around the gap); a
  gauge is interpolated linearly (the trapezoid between the two readings).
* long gap: a same-hour profile — the average usage rate of each local hour of day over the
  previous ``profile_weeks`` weeks of *actual* (non-estimated) intervals of the series; for a
  counter the profile shape is scaled to the known total. Without history: as a short gap.

* gap longer than ``max_gap_s``: not estimated (spreading months of usage, or a reading from a
  wrong clock, over the calendar would invent usage); a counter's increase across it is
  quarantined in the bucket of the reading after the gap, a gauge's integral dropped.

Every estimated amount is put in ``estimated`` and flagged; readings are never changed, so
re-deriving after late readings replaces estimates by actuals.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from collector.usage.calendar import bucket_edges, local_hours
from collector.usage.intervals import Intervals
from collector.usage.model import Resolution, UsageFlag
from collector.usage.split import split_intervals

__all__ = ["estimate_gaps", "profile_pieces"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

_WEEK_S = 7 * 86400.0
_GAP = int(UsageFlag.GAP)
_INTERP = int(UsageFlag.ESTIMATED_INTERPOLATED)
_PROFILE = int(UsageFlag.ESTIMATED_PROFILE)


def _hour_rates(actual: Intervals, lo: float, hi: float, tz: str) -> tuple[F64, float]:
    """Usage per second for each local hour of day (NaN where no data) and overall."""
    if actual.sid.shape[0] == 0 or hi <= lo:
        return np.full(24, np.nan), float("nan")
    edges = bucket_edges(lo, hi, Resolution.H1, tz)
    one = Intervals(
        np.zeros(actual.sid.shape[0], dtype=np.int64),
        actual.t0,
        actual.t1,
        actual.amount,
        actual.estimated,
        actual.quarantined,
        actual.flags,
    )
    sums = split_intervals(one, edges, 1)
    hours = local_hours(edges[:-1], tz)
    amt = np.bincount(hours, weights=sums.amount[0], minlength=24)
    cov = np.bincount(hours, weights=sums.covered_s[0], minlength=24)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates: F64 = np.where(cov > 0, amt / cov, np.nan)
    total_cov = float(cov.sum())
    return rates, (float(amt.sum()) / total_cov if total_cov > 0 else float("nan"))


def profile_pieces(
    gap: Intervals, k: int, history: Intervals, *, weeks: int, tz: str, known_total: bool
) -> Intervals | None:
    """Intervals ``gap[k]`` is estimated as from the same-hour profile of ``history`` (its
    actual intervals), or None without history."""
    g0, g1 = float(gap.t0[k]), float(gap.t1[k])
    s = int(gap.sid[k])
    lo = g0 - weeks * _WEEK_S
    a, b = np.searchsorted(history.sid, [s, s + 1])  # history is sorted by (sid, t0)
    own = np.arange(a, b)[(history.t0[a:b] >= lo) & (history.t1[a:b] <= g0)]
    rates, mean = _hour_rates(history.take(own), lo, g0, tz)
    if np.isnan(mean):
        return None
    edges = bucket_edges(g0, g1, Resolution.H1, tz).astype(np.float64)
    cuts = np.unique(np.clip(edges, g0, g1))
    p0, p1 = cuts[:-1], cuts[1:]
    hours = local_hours(np.floor(p0).astype(np.int64), tz)
    r = np.where(np.isnan(rates[hours]), mean, rates[hours])
    amounts = r * (p1 - p0)
    if known_total:
        total = float(gap.amount[k])
        weight = float(amounts.sum())
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            share = amounts / weight  # not total / weight: a tiny weight would overflow
        if weight > 0 and np.all(np.isfinite(share)):
            amounts = share * total
        else:
            amounts = total * (p1 - p0) / (g1 - g0)
    m = p0.shape[0]
    flags = np.full(m, int(gap.flags[k]) | _GAP | _PROFILE, dtype=np.int64)
    return Intervals(
        np.full(m, s, dtype=np.int64), p0, p1, amounts, amounts.copy(), np.zeros(m), flags
    )


def _hold_out(iv: Intervals, mask: B, interval_s: F64, known_total: B) -> Intervals:
    """Too-long gaps shrink to their last expected interval and are held out of billing."""
    t0 = np.where(mask, np.maximum(iv.t0, iv.t1 - interval_s[iv.sid]), iv.t0)
    held = mask & known_total[iv.sid]
    return Intervals(
        iv.sid,
        t0,
        iv.t1,
        np.where(mask, 0.0, iv.amount),
        iv.estimated,
        np.where(held, iv.quarantined + iv.amount, iv.quarantined),
        iv.flags | np.where(mask, _GAP | int(UsageFlag.GAP_TOO_LONG), 0),
    )


def estimate_gaps(
    iv: Intervals,
    *,
    gap_threshold: F64,
    short_gap_s: F64,
    max_gap_s: F64,
    interval_s: F64,
    profile_weeks: I64,
    known_total: B,
    tz: str,
) -> Intervals:
    """Flag gaps and estimate their usage (per-series settings indexed by series index).

    ``known_total[s]`` is True for counters/delta series (distribution estimated only).
    """
    dur = iv.t1 - iv.t0
    gap = dur > gap_threshold[iv.sid] * (1 + 1e-9)
    if not np.any(gap):
        return iv
    too_long = gap & (dur > max_gap_s[iv.sid])
    if np.any(too_long):
        iv = _hold_out(iv, too_long, interval_s, known_total)
        dur = iv.t1 - iv.t0
        gap = gap & ~too_long
    estimable = gap & (iv.quarantined == 0)
    long = estimable & (dur > short_gap_s[iv.sid]) & (profile_weeks[iv.sid] > 0)
    short = estimable & ~long
    flags = iv.flags | np.where(gap, _GAP, 0) | np.where(short, _INTERP, 0)
    estimated = np.where(short, iv.amount, iv.estimated)
    out = Intervals(iv.sid, iv.t0, iv.t1, iv.amount, estimated, iv.quarantined, flags)
    long_idx = np.nonzero(long)[0]
    if long_idx.shape[0] == 0:
        return out
    history = out.take(~gap & (out.quarantined == 0) & (out.estimated == 0))
    pieces: list[Intervals] = []
    fallback = np.zeros(out.sid.shape[0], dtype=np.bool_)
    for k in long_idx.tolist():
        s = int(out.sid[k])
        got = profile_pieces(
            out, k, history, weeks=int(profile_weeks[s]), tz=tz, known_total=bool(known_total[s])
        )
        if got is None:
            fallback[k] = True
        else:
            pieces.append(got)
    keep = ~long | fallback
    rest = out.take(keep)
    fb = fallback[keep]
    rest = Intervals(
        rest.sid,
        rest.t0,
        rest.t1,
        rest.amount,
        np.where(fb, rest.amount, rest.estimated),
        rest.quarantined,
        rest.flags | np.where(fb, _INTERP, 0),
    )
    return Intervals.concat([rest, *pieces])
