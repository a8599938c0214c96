"""Subscriptions cut to a billing period, and interval usage assigned to them (pure, numpy).

A *segment* is the part of one subscription that lies inside its customer's period. A plan
change or a move on the 11th gives two segments for the same meter, each rated on its own plan
version with its own usage; recurring fees are prorated by the segment's share of the period's
local days (wall-clock, so a DST day still counts as one day).

Usage rule: an interval belongs to the segment that contains the interval's **start**.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from collector.billing.model import Subscription
from collector.billing.periods import BillingPeriod, zone

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Segment:
    index: int
    customer_id: int
    subscription_id: int
    series_id: int
    plan_version_id: int
    start: datetime  # UTC, inclusive, clipped to the period
    end: datetime  # UTC, exclusive, clipped to the period
    fraction: Fraction  # share of the period's local days (for proration of recurring fees)


def _wall_seconds(a: datetime, b: datetime, tz_name: str) -> int:
    tz = zone(tz_name)
    la = a.astimezone(tz).replace(tzinfo=None)
    lb = b.astimezone(tz).replace(tzinfo=None)
    return int((lb - la).total_seconds())


def day_fraction(period: BillingPeriod, start: datetime, end: datetime) -> Fraction:
    """Share of ``period`` covered by ``[start, end)``, counted in local wall-clock time."""
    whole = period.days * 86_400
    return Fraction(_wall_seconds(start, end, period.time_zone), whole)


def build_segments(
    periods: Mapping[int, BillingPeriod], subscriptions: Sequence[Subscription]
) -> list[Segment]:
    """Segments of ``subscriptions`` inside their customer's period, ordered by customer, meter
    and start; subscriptions outside the period are dropped."""
    out: list[Segment] = []
    for sub in sorted(subscriptions, key=lambda s: (s.customer_id, s.series_id, s.valid_from)):
        period = periods.get(sub.customer_id)
        if period is None:
            continue
        start = max(sub.valid_from, period.start)
        end = period.end if sub.valid_to is None else min(sub.valid_to, period.end)
        if end <= start:
            continue
        out.append(
            Segment(
                index=len(out),
                customer_id=sub.customer_id,
                subscription_id=sub.subscription_id,
                series_id=sub.series_id,
                plan_version_id=sub.plan_version_id,
                start=start.astimezone(UTC),
                end=end.astimezone(UTC),
                fraction=day_fraction(period, start, end),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class SegmentUsage:
    """Flat interval usage of many segments: row ``i`` is the interval starting ``starts[i]``
    (Unix s) of segment ``segment[i]``."""

    segment: I64
    starts: I64
    quantity: F64
    estimated: F64
    readings: I64

    def select(self, mask: npt.NDArray[np.bool_]) -> SegmentUsage:
        return SegmentUsage(
            self.segment[mask],
            self.starts[mask],
            self.quantity[mask],
            self.estimated[mask],
            self.readings[mask],
        )


def _epoch(t: datetime) -> int:
    return int(t.timestamp())


_KEY_SHIFT = 1 << 33  # bucket epochs (< 2**33 until year 2242) packed under the series id


def assign_usage(
    segments: Sequence[Segment],
    series: I64,
    bucket: I64,
    *,
    quantity: F64,
    estimated: F64,
    readings: I64,
) -> SegmentUsage:
    """Assign flat usage rows ``(series, bucket, ...)`` to the segment containing each bucket's
    start (vectorised: one ``searchsorted`` over packed (series, time) keys). Rows in no
    segment (meter not subscribed then) are dropped."""
    if not segments or series.size == 0:
        z = np.zeros(0, dtype=np.int64)
        f = np.zeros(0, dtype=np.float64)
        return SegmentUsage(z, z, f, f, z)
    order = sorted(range(len(segments)), key=lambda k: (segments[k].series_id, segments[k].start))
    seg_series = np.array([segments[k].series_id for k in order], dtype=np.int64)
    seg_start = np.array([_epoch(segments[k].start) for k in order], dtype=np.int64)
    seg_end = np.array([_epoch(segments[k].end) for k in order], dtype=np.int64)
    seg_index = np.array([segments[k].index for k in order], dtype=np.int64)
    keys = seg_series * _KEY_SHIFT + seg_start
    row_keys = series * _KEY_SHIFT + bucket
    if row_keys.size < 2 or bool((row_keys[1:] >= row_keys[:-1]).all()):
        return _assign_sorted(
            keys,
            seg_series * _KEY_SHIFT + seg_end,
            seg_index,
            row_keys,
            bucket=bucket,
            quantity=quantity,
            estimated=estimated,
            readings=readings,
        )
    pos = np.searchsorted(keys, row_keys, side="right") - 1
    safe = np.clip(pos, 0, None)
    ok = (pos >= 0) & (seg_series[safe] == series) & (bucket < seg_end[safe])
    return SegmentUsage(
        segment=seg_index[safe[ok]],
        starts=bucket[ok],
        quantity=quantity[ok],
        estimated=estimated[ok],
        readings=readings[ok],
    )


def _assign_sorted(
    keys: I64,
    end_keys: I64,
    seg_index: I64,
    row_keys: I64,
    *,
    bucket: I64,
    quantity: F64,
    estimated: F64,
    readings: I64,
) -> SegmentUsage:
    """``assign_usage`` for rows sorted by (series, bucket), as the usage store returns them:
    each segment owns one run of rows, found by two ``searchsorted`` per segment instead of
    one per row; when the runs cover every row (the usual case) the columns are not copied."""
    lo = np.searchsorted(row_keys, keys, side="left")
    # a row belongs to the last segment starting at or before it, if it starts before its end
    nxt = np.append(lo[1:], row_keys.size)
    hi = np.minimum(np.searchsorted(row_keys, end_keys, side="left"), nxt)
    counts = np.maximum(hi - lo, 0)
    segment = np.repeat(seg_index, counts)
    if segment.size == row_keys.size:  # contiguous runs covering every row
        return SegmentUsage(segment, bucket, quantity, estimated, readings)
    take = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    take += np.arange(segment.size)
    return SegmentUsage(segment, bucket[take], quantity[take], estimated[take], readings[take])
