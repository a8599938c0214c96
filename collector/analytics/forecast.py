"""Usage forecast for the rest of a billing period from each meter's own weekday/hour pattern.

Pure numpy, vectorised over meters. For every meter:

1. **Pattern.** The average usage per (day type, local quarter hour) over the history, with
   day types weekday / Saturday / Sunday-or-holiday, each day weighted by recency
   (half-life ``half_life_days``), so a season's drift is followed within a few weeks.
   Cells the history has never seen fall back to the weekday value of the same quarter hour.
2. **Level.** The pattern's prediction of the last ``level_days`` is compared with what the
   meter really used then; the ratio (clipped to [0.5, 2]) scales the rest of the period.
3. **Forecast.** The rest of the period, quarter hour by quarter hour in the customer's zone
   (DST days have 92/100 quarter hours), is the scaled pattern of its day type.
4. **Range.** Out of sample: the pattern fitted on the history before the last ``error_days``
   days predicts those days; the root mean square of its errors summed over windows as long
   as the days left (so day-to-day correlation of weather and habits counts), scaled by the
   square root of (days left / window), is the spread. ``low``/``high`` are the expected
   total ∓ ``z`` × spread, never below zero. ``z`` = 2.0, not the Gaussian 1.28, because
   absences and weather make the errors heavy-tailed: 2.0 is what puts about 80 % of final
   invoices inside the range on the backtest (docs/analytics.md).

A meter's history starts at its first bucket with usage: the zero-filled buckets before it (a
meter installed mid-window has no readings there) are no history, neither in the pattern nor
in the level nor in the range. A meter with less than ``min_history_days`` of history has no
pattern: its forecast is its average rate since the later of the period start and its first
usage (a straight line), and its range is ±50 %.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from collector.analytics.localtime import local_time
from collector.analytics.model import BUCKET_S
from collector.errors import AnalyticsError

__all__ = ["ForecastConfig", "UsageForecast", "forecast_usage", "linear_projection"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_CELLS = 3 * 96
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    """Tuning of :func:`forecast_usage` (defaults chosen on the backtest in docs/analytics.md)."""

    half_life_days: float = 14.0
    level_days: int = 7
    error_days: int = 28
    z: float = 2.0
    min_history_days: float = 7.0
    level_clip: tuple[float, float] = (0.5, 2.0)
    level_from_period: bool = True

    def __post_init__(self) -> None:
        if not self.half_life_days > 0 or self.level_days < 0 or self.error_days < 1:
            raise AnalyticsError("half_life_days must be > 0, level_days >= 0, error_days >= 1")
        if not self.z >= 0 or not self.min_history_days >= 0:
            raise AnalyticsError("z and min_history_days must be >= 0")


@dataclass(frozen=True, slots=True)
class UsageForecast:
    """Per meter ``i``: ``expected[i, j]`` for the bucket starting ``starts[j]`` (the rest of
    the period from ``now``), the expected usage left, and its range."""

    starts: I64
    expected: F64
    observed: F64  # usage from the period start to now
    remaining: F64  # expected usage from now to the period end
    remaining_low: F64
    remaining_high: F64
    level: F64
    patterned: npt.NDArray[np.bool_]  # False: too little history, straight line used
    history_days: F64  # days from the meter's first usage to now (0: none)

    @property
    def total(self) -> F64:
        out: F64 = self.observed + self.remaining
        return out

    @property
    def total_low(self) -> F64:
        out: F64 = self.observed + self.remaining_low
        return out

    @property
    def total_high(self) -> F64:
        out: F64 = self.observed + self.remaining_high
        return out


def _day_types(days: I64, weekday: I64, holidays: Collection[date]) -> I64:
    types: I64 = np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0)).astype(np.int64)
    if holidays:
        hol = np.isin(days, [(d - _EPOCH).days for d in holidays])
        types = np.where(hol, 2, types)
    return types


def _pattern(values: F64, cells: I64, weights: F64, first: I64) -> F64:
    """Weighted mean of ``values[i, j]`` per cell over ``j >= first[i]``: ``(n, 288)``, NaN
    where no sample. ``values`` is zero before ``first`` (leading buckets without usage)."""
    order = np.argsort(cells, kind="stable")
    sc = cells[order]
    firsts = np.nonzero(np.r_[True, sc[1:] != sc[:-1]])[0]
    num = np.add.reduceat(values[:, order] * weights[order], firsts, axis=1)
    den = np.broadcast_to(np.add.reduceat(weights[order], firsts), num.shape)
    cnt = np.broadcast_to(np.bincount(cells, minlength=_CELLS)[sc[firsts]], num.shape)
    if np.any(first > 0):  # minus each meter's samples before its first usage, per cell
        rows = np.arange(1, cells.shape[0] + 1)
        w_before = np.zeros((cells.shape[0] + 1, _CELLS))
        w_before[rows, cells] = weights
        n_before = np.zeros((cells.shape[0] + 1, _CELLS), dtype=np.int64)
        n_before[rows, cells] = 1
        at = np.minimum(first, cells.shape[0])
        den = den - np.cumsum(w_before, axis=0)[at][:, sc[firsts]]
        cnt = cnt - np.cumsum(n_before, axis=0)[at][:, sc[firsts]]
    out: F64 = np.full((values.shape[0], _CELLS), np.nan)
    out[:, sc[firsts]] = np.where(cnt > 0, num / np.where(cnt > 0, den, 1.0), np.nan)
    weekday = out[:, :96]
    for t in (1, 2):
        block = out[:, t * 96 : (t + 1) * 96]
        missing = np.isnan(block)
        block[missing] = np.broadcast_to(weekday, block.shape)[missing]
    known = ~np.isnan(out)
    sums = np.where(known, out, 0.0).sum(axis=1, keepdims=True)
    counts = known.sum(axis=1, keepdims=True)
    means = sums / np.maximum(counts, 1)
    filled: F64 = np.where(np.isnan(out), means, out)
    return filled


def _fit(
    hist: F64,
    cells: I64,
    starts: I64,
    now: int,
    cfg: ForecastConfig,
    *,
    first: I64,
    level_buckets: int,
) -> tuple[F64, F64]:
    """The recency-weighted pattern ``(n, 288)`` and the level ``(n,)`` of ``hist`` (from its
    last ``level_buckets`` buckets that lie at or after each meter's ``first``)."""
    weights = np.power(0.5, (now - starts) / 86_400.0 / cfg.half_life_days)
    pattern = _pattern(hist, cells, weights, first)
    level = np.ones(hist.shape[0])
    if level_buckets:
        k = min(level_buckets, hist.shape[1])
        j = np.arange(hist.shape[1] - k, hist.shape[1])
        seen = j[None, :] >= first[:, None]
        pred = np.where(seen, pattern[:, cells[-k:]], 0.0).sum(axis=1)
        act = hist[:, -k:].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(pred > 0, act / pred, 1.0)
        level = np.clip(ratio, *cfg.level_clip)
    return pattern, level


def _first_usage(hist: F64) -> I64:
    """Index of each meter's first bucket with usage (``hist.shape[1]`` when it has none)."""
    if hist.shape[1] == 0:
        return np.zeros(hist.shape[0], dtype=np.int64)
    used = hist != 0
    any_used = used.any(axis=1)
    out: I64 = np.where(any_used, used.argmax(axis=1), hist.shape[1]).astype(np.int64)
    return out


def forecast_usage(
    history: F64,
    history_start: int,
    *,
    period_start: int,
    now: int,
    period_end: int,
    tz: str,
    holidays: Collection[date] = (),
    config: ForecastConfig | None = None,
) -> UsageForecast:
    """Forecast the usage of each meter (row of ``history``) from ``now`` to ``period_end``.

    ``history[:, j]`` is the usage of the 15-minute bucket starting ``history_start + 900 j``;
    it runs up to ``now`` (which it must reach) and includes the period so far."""
    cfg = config or ForecastConfig()
    if history_start % BUCKET_S or now % BUCKET_S or period_end % BUCKET_S:
        raise AnalyticsError("history_start, now and period_end must lie on the 15-minute grid")
    if not history_start <= period_start <= now <= period_end:
        raise AnalyticsError("need history_start <= period_start <= now <= period_end")
    n_hist = (now - history_start) // BUCKET_S
    if history.ndim != 2 or history.shape[1] < n_hist:
        raise AnalyticsError(f"history must have {n_hist} buckets per meter")
    hist = history[:, :n_hist]
    h_starts = history_start + BUCKET_S * np.arange(n_hist, dtype=np.int64)
    f_starts = np.arange(now, period_end, BUCKET_S, dtype=np.int64)
    observed = hist[:, (period_start - history_start) // BUCKET_S :].sum(axis=1)
    first = _first_usage(hist)
    history_days = (n_hist - first) * BUCKET_S / 86_400.0
    out = _straight_line(
        hist, f_starts, observed, first,
        period_start=period_start, now=now, history_start=history_start,
    )
    out.history_days[:] = history_days
    rows = np.flatnonzero((history_days >= cfg.min_history_days) & (first < n_hist))
    if n_hist == 0 or rows.shape[0] == 0:
        return out
    p = _patterned(
        hist[rows], first[rows], h_starts, f_starts, cfg,
        period_start=period_start, now=now, tz=tz, holidays=holidays,
    )
    for name in ("expected", "remaining", "remaining_low", "remaining_high", "level"):
        getattr(out, name)[rows] = p[name]
    out.patterned[rows] = True
    return out


def _patterned(
    hist: F64,
    first: I64,
    h_starts: I64,
    f_starts: I64,
    cfg: ForecastConfig,
    *,
    period_start: int,
    now: int,
    tz: str,
    holidays: Collection[date],
) -> dict[str, F64]:
    """The pattern forecast of meters with enough history (``first``: each one's first
    bucket with usage; the buckets before it are left out)."""
    n, n_hist = hist.shape
    lt = local_time(h_starts, tz)
    cells = _day_types(lt.day, lt.weekday, holidays) * 96 + lt.quarter
    elapsed = (now - period_start) // BUCKET_S if cfg.level_from_period else 0
    level_buckets = max(cfg.level_days * 96, elapsed) if cfg.level_days else 0
    pattern, level = _fit(
        hist, cells, h_starts, now, cfg, first=first, level_buckets=level_buckets
    )

    lf = local_time(f_starts, tz)
    f_cells = _day_types(lf.day, lf.weekday, holidays) * 96 + lf.quarter
    expected: F64 = pattern[:, f_cells] * level[:, None]
    remaining = expected.sum(axis=1)

    # Range: out-of-sample daily errors. The pattern fitted without the last error_days days
    # predicts them; sums of the errors over windows as long as the days left (autocorrelation
    # of weather and behaviour included) give the spread, scaled by sqrt to the days left.
    # Meters whose history before those days is too short are predicted in sample.
    k = min(cfg.error_days * 96, n_hist)
    p_hold, l_hold = pattern, level
    held = (n_hist - k - first) * BUCKET_S >= cfg.min_history_days * 86_400
    if held.any():
        ph, lh = _fit(
            hist[:, :-k],
            cells[:-k],
            h_starts[:-k],
            int(h_starts[-k]),
            cfg,
            first=first,
            level_buckets=level_buckets,
        )
        p_hold = np.where(held[:, None], ph, pattern)
        l_hold = np.where(held, lh, level)
    seen = np.arange(n_hist - k, n_hist)[None, :] >= first[:, None]
    res = np.where(seen, hist[:, -k:] - p_hold[:, cells[-k:]] * l_hold[:, None], 0.0)
    day_idx = np.unique(lt.day[-k:], return_inverse=True)[1].reshape(-1)
    n_days = int(day_idx.max()) + 1
    daily = np.zeros((n, n_days))
    np.add.at(daily.T, day_idx, res.T)
    day_seen = np.zeros((n, n_days), dtype=np.int64)
    np.add.at(day_seen.T, day_idx, seen.T.astype(np.int64))
    valid_days = (day_seen > 0).sum(axis=1)  # the days seen are the last ones
    days_left = f_starts.shape[0] / 96.0
    ws = np.minimum(max(round(days_left), 1), np.maximum(valid_days // 2, 1))
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(daily, axis=1)], axis=1)
    sigma_w = np.zeros(n)
    for w in np.unique(ws).tolist():
        m = ws == w
        window_sums = csum[m, w:] - csum[m, :-w]
        whole = np.arange(n_days - w + 1)[None, :] >= (n_days - valid_days[m])[:, None]
        count = np.maximum(whole.sum(axis=1), 1)
        sigma_w[m] = np.sqrt((np.where(whole, window_sums, 0.0) ** 2).sum(axis=1) / count)
    half = cfg.z * sigma_w * np.sqrt(days_left / ws) if days_left > 0 else np.zeros(n)
    return {
        "expected": expected,
        "remaining": remaining,
        "remaining_low": np.maximum(remaining - half, 0.0),
        "remaining_high": remaining + half,
        "level": level,
    }


def _straight_line(
    hist: F64, f_starts: I64, observed: F64, first: I64, *, period_start: int, now: int,
    history_start: int,
) -> UsageForecast:
    """Every meter's average rate since the later of the period start and its first usage."""
    n = hist.shape[0]
    j = np.maximum((max(period_start, history_start) - history_start) // BUCKET_S, first)
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(hist, axis=1)], axis=1)
    rate = csum[:, -1] - csum[np.arange(n), np.minimum(j, hist.shape[1])]
    since = np.maximum(now - (history_start + j * BUCKET_S), BUCKET_S)
    per_bucket = rate / (since / BUCKET_S)
    expected: F64 = np.repeat(per_bucket[:, None], f_starts.shape[0], axis=1)
    remaining = expected.sum(axis=1)
    return UsageForecast(
        f_starts,
        expected,
        observed,
        remaining,
        remaining * 0.5,
        remaining * 1.5,
        np.ones(n),
        np.zeros(n, dtype=np.bool_),
        np.zeros(n),
    )


def linear_projection(observed: F64, period_start: int, now: int, period_end: int) -> F64:
    """Lago's projection: usage so far divided by the elapsed share of the period."""
    if not period_start < now <= period_end:
        raise AnalyticsError("need period_start < now <= period_end")
    ratio = (now - period_start) / (period_end - period_start)
    out: F64 = observed / ratio
    return out
