"""Anomalies in meters' usage, each with a reason a person can read and the numbers behind it.

Pure numpy over a ``(meters, buckets)`` matrix of 15-minute usage in one zone:

* ``continuous_flow`` (a leak): a meter that should rest at night (water, gas) never reaches
  zero between 01:00 and 05:00 local time for ``leak_nights`` nights in a row;
* ``jump``: a local day's usage above ``jump_ratio`` × the meter's own median of the
  previous ``baseline_days`` days and above that median + ``jump_mads`` robust deviations
  (1.4826 × median absolute deviation), consecutive days reported once. Days the site was
  marked vacant are no baseline; a jump explained by a leak found on the same meter (excess
  within 1.5 days of its flow) is reported as the leak only;
* ``silent``: no reading for ``silent_after_s`` up to ``now``;
* ``vacant_usage``: more than ``vacant_max_per_day`` used on a day while the site is marked
  vacant;
* ``reverse_flow``: negative usage, or increases the usage engine had to clamp at zero;
* ``estimated_share``: more than ``estimated_share`` of the window's usage is estimated.

Each anomaly carries ``facts`` (name → number) and a one-sentence ``reason`` built from them.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from collector.analytics.localtime import local_time
from collector.analytics.model import BUCKET_S
from collector.errors import AnalyticsError

__all__ = [
    "Anomaly",
    "AnomalyConfig",
    "AnomalyKind",
    "MeterUsage",
    "detect_anomalies",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
NEGATIVE_CLAMPED = 512  # collector.usage.UsageFlag.NEGATIVE_CLAMPED


class AnomalyKind(enum.StrEnum):
    CONTINUOUS_FLOW = "continuous_flow"
    JUMP = "jump"
    SILENT = "silent"
    VACANT_USAGE = "vacant_usage"
    REVERSE_FLOW = "reverse_flow"
    ESTIMATED_SHARE = "estimated_share"


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    """Thresholds of the detectors (see the module docstring)."""

    leak_nights: int = 3
    night_hours: tuple[int, int] = (1, 5)
    leak_min_flow: float = 1e-9
    baseline_days: int = 28
    min_baseline_days: int = 14
    jump_ratio: float = 2.0
    jump_mads: float = 4.0
    silent_after_s: float = 6 * 3600.0
    vacant_max_per_day: float = 0.0
    estimated_share: float = 0.2

    def __post_init__(self) -> None:
        if self.leak_nights < 1 or self.min_baseline_days < 1:
            raise AnalyticsError("leak_nights and min_baseline_days must be >= 1")
        if not 0 <= self.night_hours[0] < self.night_hours[1] <= 24:
            raise AnalyticsError("night_hours must be an increasing pair within 0..24")
        if not (self.jump_ratio > 1 and self.jump_mads > 0 and self.silent_after_s > 0):
            raise AnalyticsError("jump_ratio must be > 1, jump_mads and silent_after_s > 0")
        if not 0 < self.estimated_share <= 1 or self.vacant_max_per_day < 0:
            raise AnalyticsError("estimated_share must be in (0, 1], vacant_max_per_day >= 0")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding about one meter in ``[start, end)`` (Unix s)."""

    series_id: int
    kind: AnomalyKind
    start: int
    end: int
    reason: str
    facts: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MeterUsage:
    """What the detectors look at: meters × 15-minute buckets from ``starts``.

    ``rests_at_night[i]``: meter ``i`` should reach zero at night (water, gas).
    ``last_reading[i]``: Unix s of its last reading (NaN: never). ``vacant``: per series id,
    ``(start, end)`` windows in which its site is marked vacant. ``flags`` may be None."""

    series_ids: I64
    starts: I64
    quantity: F64
    estimated: F64
    rests_at_night: npt.NDArray[np.bool_]
    last_reading: F64
    vacant: Mapping[int, Sequence[tuple[int, int]]] = field(default_factory=dict)
    flags: I64 | None = None

    def __post_init__(self) -> None:
        n, t = self.series_ids.shape[0], self.starts.shape[0]
        if self.quantity.shape != (n, t) or self.estimated.shape != (n, t):
            raise AnalyticsError("quantity/estimated must be (meters, buckets)")
        if self.rests_at_night.shape != (n,) or self.last_reading.shape != (n,):
            raise AnalyticsError("rests_at_night/last_reading need one value per meter")
        if self.flags is not None and self.flags.shape != (n, t):
            raise AnalyticsError("flags must be (meters, buckets)")


def _when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _runs(mask: npt.NDArray[np.bool_], min_len: int = 1) -> list[tuple[int, int]]:
    """``[i, j)`` index runs where ``mask`` is True, at least ``min_len`` long."""
    if not mask.any():
        return []
    m = np.r_[False, mask, False].astype(np.int8)
    d = np.diff(m)
    starts, ends = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b - a >= min_len]


@dataclass(frozen=True, slots=True)
class _Days:
    """Local days of the grid: first bucket index of each day, its start, and its length."""

    firsts: I64
    starts: I64
    ends: I64
    quarter: I64
    hour: I64
    day_of_bucket: I64


def _days(starts: I64, tz: str) -> _Days:
    lt = local_time(starts, tz)
    firsts = np.nonzero(np.r_[True, lt.day[1:] != lt.day[:-1]])[0].astype(np.int64)
    day_of_bucket = np.cumsum(np.r_[0, (lt.day[1:] != lt.day[:-1]).astype(np.int64)])
    ends = np.r_[starts[firsts[1:]], starts[-1] + BUCKET_S].astype(np.int64)
    return _Days(firsts, starts[firsts], ends, lt.quarter, lt.hour, day_of_bucket)


def _leaks(u: MeterUsage, d: _Days, cfg: AnomalyConfig) -> list[Anomaly]:
    out: list[Anomaly] = []
    lo, hi = cfg.night_hours
    night = (d.hour >= lo) & (d.hour < hi)
    if not night.any():
        return out
    nd = d.day_of_bucket[night]
    nfirst = np.nonzero(np.r_[True, nd[1:] != nd[:-1]])[0]
    days = nd[nfirst]
    for i in np.nonzero(u.rests_at_night)[0]:
        mins = np.minimum.reduceat(u.quantity[i, night], nfirst)
        for a, b in _runs(mins > cfg.leak_min_flow, cfg.leak_nights):
            flow = float(np.min(mins[a:b])) * 3600 / BUCKET_S
            out.append(
                Anomaly(
                    int(u.series_ids[i]),
                    AnomalyKind.CONTINUOUS_FLOW,
                    int(d.starts[days[a]]),
                    int(d.ends[days[b - 1]]),
                    f"usage never reached zero between {lo:02d}:00 and {hi:02d}:00 for"
                    f" {b - a} nights in a row (at least {flow:.4g} per hour all night):"
                    " a leak or an appliance left running",
                    {"nights": float(b - a), "min_night_flow_per_hour": flow},
                )
            )
    return out


def _daily(values: F64, d: _Days) -> F64:
    out: F64 = np.add.reduceat(values, d.firsts, axis=1)
    return out


def _vacant_days(u: MeterUsage, d: _Days, i: int) -> npt.NDArray[np.bool_]:
    out = np.zeros(d.starts.shape[0], dtype=np.bool_)
    for wa, wb in u.vacant.get(int(u.series_ids[i]), ()):
        out |= (d.ends > wa) & (d.starts < wb)
    return out


def _jumps(u: MeterUsage, daily: F64, d: _Days, cfg: AnomalyConfig) -> list[Anomaly]:
    """Vectorised over meters and days: each day against the median and MAD of the usable
    (not vacant) days among the ``baseline_days`` before it."""
    out: list[Anomaly] = []
    n, n_days = daily.shape
    b = cfg.baseline_days
    base_vals = daily.copy()
    for i in range(n):
        base_vals[i, _vacant_days(u, d, i)] = np.nan
    ext = np.concatenate([np.full((n, b), np.nan), base_vals], axis=1)
    win = np.lib.stride_tricks.sliding_window_view(ext, b, axis=1)[:, :n_days, :]
    count = (~np.isnan(win)).sum(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: no baseline
        med = np.nanmedian(win, axis=-1)
        mad = np.nanmedian(np.abs(win - med[..., None]), axis=-1) * 1.4826
    ok = (count >= cfg.min_baseline_days) & (med > 0)
    with np.errstate(invalid="ignore"):
        flagged = ok & (daily > cfg.jump_ratio * med) & (daily > med + cfg.jump_mads * mad)
    for row in np.nonzero(flagged.any(axis=1))[0]:
        i = int(row)
        for a, e in _runs(flagged[i]):
            peak = a + int(np.argmax(daily[i, a:e]))
            v, m = float(daily[i, peak]), float(med[i, peak])
            out.append(
                Anomaly(
                    int(u.series_ids[i]),
                    AnomalyKind.JUMP,
                    int(d.starts[a]),
                    int(d.ends[e - 1]),
                    f"{v:.4g} used on the day starting {_when(int(d.starts[peak]))},"
                    f" {v / m:.1f}x the meter's usual {m:.4g} per day"
                    f" (median of the {cfg.baseline_days} days before)",
                    {"day_quantity": v, "baseline_median": m, "ratio": v / m,
                     "days": float(e - a)},
                )
            )
    return out


def _silent(u: MeterUsage, now: int, cfg: AnomalyConfig) -> list[Anomaly]:
    out: list[Anomaly] = []
    for i, last in enumerate(u.last_reading):
        since = float(u.starts[0]) if np.isnan(last) else float(last)
        quiet = now - since
        if quiet >= cfg.silent_after_s:
            hours = quiet / 3600
            what = "no reading at all" if np.isnan(last) else f"last reading at {_when(int(last))}"
            out.append(
                Anomaly(
                    int(u.series_ids[i]),
                    AnomalyKind.SILENT,
                    int(since),
                    now,
                    f"meter silent for {hours:.1f} hours ({what}); expected one at least"
                    f" every {cfg.silent_after_s / 3600:.1f} hours",
                    {"hours_silent": hours},
                )
            )
    return out


def _vacant(u: MeterUsage, daily: F64, d: _Days, cfg: AnomalyConfig) -> list[Anomaly]:
    out: list[Anomaly] = []
    row = {int(s): i for i, s in enumerate(u.series_ids)}
    for sid, windows in u.vacant.items():
        i = row.get(int(sid))
        if i is None:
            continue
        for wa, wb in windows:
            inside = (d.starts >= wa) & (d.ends <= wb)
            used = inside & (daily[i] > cfg.vacant_max_per_day)
            for a, b in _runs(used):
                q = float(daily[i, a:b].sum())
                out.append(
                    Anomaly(
                        int(sid),
                        AnomalyKind.VACANT_USAGE,
                        int(d.starts[a]),
                        int(d.ends[b - 1]),
                        f"{q:.4g} used over {b - a} day(s) while the site is marked vacant"
                        f" (allowed {cfg.vacant_max_per_day:.4g} per day)",
                        {"quantity": q, "days": float(b - a)},
                    )
                )
    return out


def _reverse(u: MeterUsage) -> list[Anomaly]:
    out: list[Anomaly] = []
    neg = u.quantity < 0
    if u.flags is not None:
        neg = neg | ((u.flags & NEGATIVE_CLAMPED) != 0)
    for i in np.nonzero(neg.any(axis=1))[0]:
        for a, b in _runs(neg[i]):
            q = float(np.minimum(u.quantity[i, a:b], 0).sum())
            out.append(
                Anomaly(
                    int(u.series_ids[i]),
                    AnomalyKind.REVERSE_FLOW,
                    int(u.starts[a]),
                    int(u.starts[b - 1]) + BUCKET_S,
                    f"usage ran backwards in {b - a} quarter hour(s) from"
                    f" {_when(int(u.starts[a]))} ({q:.4g} net): reverse flow, a wrongly wired"
                    " meter or a counter that went back",
                    {"negative_quantity": q, "buckets": float(b - a)},
                )
            )
    return out


def _estimated(u: MeterUsage, cfg: AnomalyConfig) -> list[Anomaly]:
    out: list[Anomaly] = []
    q = u.quantity.sum(axis=1)
    e = u.estimated.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(q > 0, e / q, 0.0)
    for i in np.nonzero(share > cfg.estimated_share)[0]:
        out.append(
            Anomaly(
                int(u.series_ids[i]),
                AnomalyKind.ESTIMATED_SHARE,
                int(u.starts[0]),
                int(u.starts[-1]) + BUCKET_S,
                f"{share[i] * 100:.0f}% of this meter's usage is estimated"
                f" ({e[i]:.4g} of {q[i]:.4g}; threshold {cfg.estimated_share * 100:.0f}%):"
                " readings are missing",
                {"estimated_share": float(share[i]), "estimated": float(e[i]),
                 "quantity": float(q[i])},
            )
        )
    return out


def _unexplained(jumps: list[Anomaly], leaks: list[Anomaly]) -> list[Anomaly]:
    """Jumps not explained by a leak found on the same meter at the same time: when the day's
    excess over the baseline is no more than 1.5 × a day of the leak's flow, the leak is the
    cause to report and the higher daily usage only its symptom."""

    def explained(j: Anomaly) -> bool:
        excess = j.facts["day_quantity"] - j.facts["baseline_median"]
        return any(
            lk.series_id == j.series_id
            and lk.start < j.end + 86_400
            and j.start < lk.end
            and excess <= 1.5 * 24 * lk.facts["min_night_flow_per_hour"]
            for lk in leaks
        )

    return [j for j in jumps if not explained(j)]


def detect_anomalies(
    usage: MeterUsage, *, tz: str, now: int, config: AnomalyConfig | None = None
) -> list[Anomaly]:
    """Every anomaly of every meter, ordered by meter, start and kind."""
    cfg = config or AnomalyConfig()
    if usage.starts.shape[0] == 0:
        return []
    d = _days(usage.starts, tz)
    daily = _daily(usage.quantity, d)
    leaks = _leaks(usage, d, cfg)
    found = (
        leaks
        + _unexplained(_jumps(usage, daily, d, cfg), leaks)
        + _silent(usage, now, cfg)
        + _vacant(usage, daily, d, cfg)
        + _reverse(usage)
        + _estimated(usage, cfg)
    )
    return sorted(found, key=lambda a: (a.series_id, a.start, a.kind.value))
