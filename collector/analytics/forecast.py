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

A meter with less than ``min_history_days`` of history has no pattern: its forecast is its
average rate so far (a straight line), and its range is ±50 %.
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


def _pattern(values: F64, cells: I64, weights: F64) -> F64:
    """Weighted mean of ``values[:, j]`` per cell: ``(n, 288)``, NaN where no sample."""
    order = np.argsort(cells, kind="stable")
    sc = cells[order]
    firsts = np.nonzero(np.r_[True, sc[1:] != sc[:-1]])[0]
    num = np.add.reduceat(values[:, order] * weights[order], firsts, axis=1)
    den = np.add.reduceat(weights[order], firsts)
    out: F64 = np.full((values.shape[0], _CELLS), np.nan)
    out[:, sc[firsts]] = num / den
    weekday = out[:, :96]
    for t in (1, 2):
        block = out[:, t * 96 : (t + 1) * 96]
        missing = np.isnan(block)
        block[missing] = np.broadcast_to(weekday, block.shape)[missing]
    means = np.nanmean(np.where(np.isnan(out), np.nan, out), axis=1, keepdims=True)
    means = np.where(np.isnan(means), 0.0, means)
    filled: F64 = np.where(np.isnan(out), means, out)
    return filled


def _fit(
    hist: F64, cells: I64, starts: I64, now: int, cfg: ForecastConfig, *, level_buckets: int
) -> tuple[F64, F64]:
    """The recency-weighted pattern ``(n, 288)`` and the level ``(n,)`` of ``hist`` (from its
    last ``level_buckets`` buckets)."""
    weights = np.power(0.5, (now - starts) / 86_400.0 / cfg.half_life_days)
    pattern = _pattern(hist, cells, weights)
    level = np.ones(hist.shape[0])
    if level_buckets:
        k = min(level_buckets, hist.shape[1])
        pred = pattern[:, cells[-k:]].sum(axis=1)
        act = hist[:, -k:].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(pred > 0, act / pred, 1.0)
        level = np.clip(ratio, *cfg.level_clip)
    return pattern, level


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
    n = hist.shape[0]
    h_starts = history_start + BUCKET_S * np.arange(n_hist, dtype=np.int64)
    f_starts = np.arange(now, period_end, BUCKET_S, dtype=np.int64)
    observed = hist[:, (period_start - history_start) // BUCKET_S :].sum(axis=1)
    if n_hist == 0 or n_hist * BUCKET_S < cfg.min_history_days * 86_400:
        return _straight_line(
            hist,
            f_starts,
            observed,
            period_start=period_start,
            now=now,
            history_start=history_start,
        )

    lt = local_time(h_starts, tz)
    cells = _day_types(lt.day, lt.weekday, holidays) * 96 + lt.quarter
    elapsed = (now - period_start) // BUCKET_S if cfg.level_from_period else 0
    level_buckets = max(cfg.level_days * 96, elapsed) if cfg.level_days else 0
    pattern, level = _fit(hist, cells, h_starts, now, cfg, level_buckets=level_buckets)

    lf = local_time(f_starts, tz)
    f_cells = _day_types(lf.day, lf.weekday, holidays) * 96 + lf.quarter
    expected: F64 = pattern[:, f_cells] * level[:, None]
    remaining = expected.sum(axis=1)

    # Range: out-of-sample daily errors. The pattern fitted without the last error_days days
    # predicts them; sums of the errors over windows as long as the days left (autocorrelation
    # of weather and behaviour included) give the spread, scaled by sqrt to the days left.
    k = min(cfg.error_days * 96, n_hist)
    if (n_hist - k) * BUCKET_S >= cfg.min_history_days * 86_400:
        p_hold, l_hold = _fit(
            hist[:, :-k],
            cells[:-k],
            h_starts[:-k],
            int(h_starts[-k]),
            cfg,
            level_buckets=level_buckets,
        )
    else:
        p_hold, l_hold = pattern, level
    res = hist[:, -k:] - p_hold[:, cells[-k:]] * l_hold[:, None]
    day_idx = np.unique(lt.day[-k:], return_inverse=True)[1].reshape(-1)
    daily = np.zeros((n, int(day_idx.max()) + 1))
    np.add.at(daily.T, day_idx, res.T)
    days_left = f_starts.shape[0] / 96.0
    w = int(min(max(round(days_left), 1), max(daily.shape[1] // 2, 1)))
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(daily, axis=1)], axis=1)
    window_sums = csum[:, w:] - csum[:, :-w]
    sigma_w = np.sqrt((window_sums**2).mean(axis=1))
    half = cfg.z * sigma_w * np.sqrt(days_left / w) if days_left > 0 else np.zeros(n)
    return UsageForecast(
        f_starts,
        expected,
        observed,
        remaining,
        np.maximum(remaining - half, 0.0),
        remaining + half,
        level,
        np.ones(n, dtype=np.bool_),
    )


def _straight_line(
    hist: F64, f_starts: I64, observed: F64, *, period_start: int, now: int, history_start: int
) -> UsageForecast:
    n = hist.shape[0]
    since = max(now - max(period_start, history_start), BUCKET_S)
    rate = hist[:, (max(period_start, history_start) - history_start) // BUCKET_S :].sum(axis=1)
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
    )


def linear_projection(observed: F64, period_start: int, now: int, period_end: int) -> F64:
    """Lago's projection: usage so far divided by the elapsed share of the period."""
    if not period_start < now <= period_end:
        raise AnalyticsError("need period_start < now <= period_end")
    ratio = (now - period_start) / (period_end - period_start)
    out: F64 = observed / ratio
    return out
