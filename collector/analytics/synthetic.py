"""A labelled synthetic fleet for measuring the anomaly detectors (pure, seeded).

Water meters (resting at night, morning/evening draws) and electricity meters (never at
zero; households with later weekend mornings) in one zone, 15-minute usage with day-to-day
and quarter-hour noise, and anomalies injected at known meters and times: leaks (constant
flow from some night on), one-day jumps (3–6× a normal day), meters going silent, usage
while a site is marked vacant, reverse flow, high estimated shares. Hard negatives are
injected too: single nights with flow, vacancy windows with no usage, long absences at
base load, small estimated shares. ``labels`` lists every injected anomaly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.analytics.anomalies import Anomaly, AnomalyKind, MeterUsage
from collector.analytics.localtime import local_time

__all__ = ["Label", "LabelledFleet", "labelled_fleet", "score"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Label:
    """An injected anomaly: meter, kind and the interval it covers (Unix s)."""

    series_id: int
    kind: AnomalyKind
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class LabelledFleet:
    usage: MeterUsage
    labels: tuple[Label, ...]
    now: int
    tz: str


def _bump(h: F64, centre: float, width: float) -> F64:
    d = np.minimum(np.abs(h - centre), 24 - np.abs(h - centre))
    out: F64 = np.exp(-0.5 * (d / width) ** 2)
    return out


def labelled_fleet(  # noqa: PLR0915 - one generator, read top to bottom
    meters: int = 400, days: int = 42, *, seed: int = 1, start: int = 1_772_323_200,
    tz: str = "Europe/Amsterdam", rate: float = 0.25,
) -> LabelledFleet:
    """``meters`` meters over ``days`` days from ``start`` (default 2026-03-01T00:00Z); each
    anomaly kind is injected into about ``rate`` of the meters it applies to."""
    rng = np.random.default_rng(seed)
    starts = np.arange(start, start + days * DAY, 900, dtype=np.int64)
    now = int(starts[-1]) + 900
    t = starts.shape[0]
    lt = local_time(starts, tz)
    h = (lt.local % DAY) / 3600.0
    weekend = lt.weekday >= 5
    day_idx = (starts - start) // DAY
    ids = np.arange(1, meters + 1, dtype=np.int64)
    water = ids % 2 == 0
    q = np.zeros((meters, t))
    est = np.zeros((meters, t))
    last = np.full(meters, float(now - 900))
    vacant: dict[int, list[tuple[int, int]]] = {}
    labels: list[Label] = []

    for i in range(meters):
        sid = int(ids[i])
        daily = np.exp(rng.normal(0, 0.08, days))[day_idx]
        scale = rng.lognormal(0, 0.4)
        if water[i]:
            # draws: discrete events, mornings (later at weekends) and evenings; zero between
            # about 16 draws a day (taps, toilets, showers): a household's daily water use
            # then varies by about a third from day to day
            p = 0.15 + 0.75 * _bump(h - weekend * 1.5, 7, 0.8) + 0.45 * _bump(h, 19.5, 1.2)
            p = np.where((h >= 0.5) & (h < 5.5), 0.0, p)  # nobody draws water at night
            draws = rng.random(t) < p
            row = draws * rng.gamma(2.0, 0.004 * scale, t) * daily
            night_once = rng.random() < 0.3  # hard negative: one night with flow
            if night_once:
                d0 = int(rng.integers(1, days - 1))
                m = (day_idx == d0) & (h >= 1) & (h < 5)
                row = row + m * 0.002 * scale
        else:
            shape = 0.25 + 0.2 * _bump(h, 13, 3.5) + 0.55 * _bump(h - weekend * 2, 7.5, 1.0)
            shape = shape + 0.75 * _bump(h, 19, 1.6)
            row = 0.25 * scale * shape * daily * rng.gamma(8.0, 1 / 8.0, t)
            if rng.random() < 0.15:  # hard negative: an absence at base load
                d0 = int(rng.integers(5, days - 10))
                away = (day_idx >= d0) & (day_idx < d0 + int(rng.integers(4, 9)))
                row = np.where(away, 0.25 * scale * 0.3 * daily, row)
        q[i] = row

        # -- injected anomalies --------------------------------------------------------
        if water[i] and rng.random() < rate:  # leak from some night to the end
            d0 = int(rng.integers(days // 3, days - 5))
            from_t = start + d0 * DAY
            q[i] += (starts >= from_t) * 0.003 * scale * rng.uniform(0.5, 2.0)
            labels.append(Label(sid, AnomalyKind.CONTINUOUS_FLOW, from_t, now))
        if rng.random() < rate:  # one day 3-6x normal
            # after 24 days (a baseline of 14 usable days even around a vacancy), before any
            # silence (at most 5 days): the day's usage plus 2-5 typical days
            d0 = int(rng.integers(24, days - 6))
            m = day_idx == d0
            typical = q[i, : d0 * 96].reshape(d0, 96).mean(axis=0)
            q[i, m] += rng.uniform(2.0, 5.0) * typical[: int(m.sum())]
            labels.append(Label(sid, AnomalyKind.JUMP, start + d0 * DAY, start + (d0 + 1) * DAY))
        if rng.random() < rate:  # vacancy with usage going on
            d0 = int(rng.integers(5, days - 12))
            wa, wb = start + d0 * DAY, start + (d0 + 8) * DAY
            vacant[sid] = [(wa, wb)]
            labels.append(Label(sid, AnomalyKind.VACANT_USAGE, wa, wb))
        elif rng.random() < rate:  # hard negative: vacancy, and nothing used
            d0 = int(rng.integers(5, days - 12))
            wa, wb = start + d0 * DAY, start + (d0 + 8) * DAY
            vacant[sid] = [(wa, wb)]
            q[i, (starts >= wa) & (starts < wb)] = 0.0
        if rng.random() < rate / 2:  # reverse flow in a few quarter hours
            j = int(rng.integers(96, t - 96))
            k = int(rng.integers(1, 4))
            q[i, j : j + k] = -abs(q[i, j : j + k]) - 0.01
            labels.append(
                Label(sid, AnomalyKind.REVERSE_FLOW, int(starts[j]), int(starts[j + k - 1]) + 900)
            )
        share = rng.uniform(0.3, 0.6) if rng.random() < rate else rng.uniform(0.0, 0.1)
        gap = rng.random(t) < share
        est[i] = np.where(gap, np.maximum(q[i], 0), 0.0)
        if share >= 0.3:
            labels.append(Label(sid, AnomalyKind.ESTIMATED_SHARE, int(starts[0]), now))
        if rng.random() < rate / 2:  # silent for the last 8 hours .. 5 days
            quiet = int(rng.integers(8 * 3600, 5 * DAY)) // 900 * 900
            q[i, starts >= now - quiet] = 0.0
            est[i, starts >= now - quiet] = 0.0
            last[i] = float(now - quiet - 900)
            labels.append(Label(sid, AnomalyKind.SILENT, now - quiet, now))
    usage = MeterUsage(ids, starts, q, est, water.copy(), last, vacant)
    return LabelledFleet(usage, tuple(labels), now, tz)


def _overlaps(a: Anomaly, b: Label, slack: int = DAY) -> bool:
    return a.series_id == b.series_id and a.kind is b.kind and (
        a.start < b.end + slack and b.start < a.end + slack
    )


def score(
    found: list[Anomaly], labels: tuple[Label, ...]
) -> dict[AnomalyKind, tuple[float, float, int, int]]:
    """Per kind: ``(precision, recall, detections, labels)``. A detection is right when a
    label of the same meter and kind overlaps it (one day of slack)."""
    out: dict[AnomalyKind, tuple[float, float, int, int]] = {}
    for kind in AnomalyKind:
        dets = [a for a in found if a.kind is kind]
        labs = [b for b in labels if b.kind is kind]
        tp_d = sum(any(_overlaps(a, b) for b in labs) for a in dets)
        tp_l = sum(any(_overlaps(a, b) for a in dets) for b in labs)
        precision = tp_d / len(dets) if dets else 1.0
        recall = tp_l / len(labs) if labs else 1.0
        out[kind] = (precision, recall, len(dets), len(labs))
    return out
