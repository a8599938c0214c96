"""Adapter to the rating engine (``collector.rating``): plan documents in, segment
lines out. One engine call per (plan version, meter unit) group of segments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from collector.billing.periods import BillingPeriod
from collector.billing.segments import Segment, SegmentUsage
from collector.errors import PlanError, ValidationFailed
from collector.rating import (
    QUANTITY_EXPONENT,
    IntervalUsage,
    LineItem,
    Plan,
    Subscriptions,
    minor_unit_exponent,
    parse_plan,
    rate,
)
from collector.rating.lines import KIND_ORDER

INTERVAL_S = 900
F64 = npt.NDArray[np.float64]


def parse_plan_document(document: Mapping[str, Any]) -> Plan:
    """Validate a stored/posted plan document; ValidationFailed (with the field path) if bad."""
    try:
        return parse_plan(document)
    except PlanError as exc:
        raise ValidationFailed(f"invalid plan: {exc}") from exc


@dataclass(frozen=True, slots=True)
class RatingGroup:
    plan: Plan
    unit: str
    segments: tuple[Segment, ...]


def group_segments(
    segments: Sequence[Segment], plans: Mapping[int, Plan], units: Mapping[int, str]
) -> list[RatingGroup]:
    """Segments grouped by (plan version, unit of the meter's series)."""
    groups: dict[tuple[int, str], list[Segment]] = {}
    for seg in segments:
        groups.setdefault((seg.plan_version_id, units[seg.series_id]), []).append(seg)
    return [
        RatingGroup(plans[pv], unit, tuple(segs)) for (pv, unit), segs in sorted(groups.items())
    ]


@dataclass(frozen=True, slots=True)
class GroupResult:
    """Lines (invoice order) and actual demand peaks (charge id -> peak in the billed unit,
    ``Decimal``) per global segment index."""

    lines: dict[int, list[LineItem]]
    peaks: dict[int, dict[str, Decimal]]


def _advance(
    group: RatingGroup, billed: Mapping[int, Decimal] | None
) -> npt.NDArray[np.int64] | None:
    """Minor units billed in advance per segment of ``group`` (None when nothing was)."""
    if not billed:
        return None
    exp = minor_unit_exponent(group.plan.currency)
    out = np.zeros(len(group.segments), dtype=np.int64)
    for k, seg in enumerate(group.segments):
        amount = billed.get(seg.index)
        if amount is None:
            continue
        minor = amount.scaleb(exp)
        if minor != minor.to_integral_value():
            raise ValidationFailed(f"billed in advance {amount} is not in whole minor units")
        out[k] = int(minor)
    return out if out.any() else None


def rate_group(
    group: RatingGroup,
    usage: SegmentUsage,
    cycles: Sequence[BillingPeriod],
    previous_peaks: Mapping[str, F64] | None = None,
    billed_in_advance: Mapping[int, Decimal] | None = None,
) -> GroupResult:
    """Lines of each segment of ``group`` (by global segment index), in invoice order.

    ``previous_peaks``: per ratcheted demand charge, ``(len(group.segments), months)`` previous
    peaks (``collector.billing.ratchets.previous_peaks``); without it ratchets have no history.

    ``usage`` holds rows of all segments; only this group's are passed to the engine;
    ``cycles[i]`` is the billing period of segment ``i``. Each
    segment is a rating subscription whose period is the segment and whose cycle is its
    customer's billing period (recurring fees are prorated by days by the engine).

    ``billed_in_advance``: per global segment index, what interim invoices of its period
    billed (progressive billing; ``collector.billing.interim.advance_by_segment``).
    """
    local = np.full(len(cycles), -1, dtype=np.int64)
    idx = np.array([s.index for s in group.segments], dtype=np.int64)
    local[idx] = np.arange(idx.size)
    keep = local[usage.segment] >= 0
    mine = usage if bool(keep.all()) else usage.select(keep)  # one group: no copy
    subs = Subscriptions(
        period_start=np.array([int(s.start.timestamp()) for s in group.segments], dtype=np.int64),
        period_end=np.array([int(s.end.timestamp()) for s in group.segments], dtype=np.int64),
        cycle_start=np.array(
            [int(cycles[s.index].start.timestamp()) for s in group.segments], dtype=np.int64
        ),
        cycle_end=np.array(
            [int(cycles[s.index].end.timestamp()) for s in group.segments], dtype=np.int64
        ),
        previous_peaks=dict(previous_peaks or {}),
        billed_in_advance=_advance(group, billed_in_advance),
    )
    iu = IntervalUsage(
        unit=group.unit,
        interval_seconds=INTERVAL_S,
        subscription=local[mine.segment].astype(np.int32),
        start=np.asarray(mine.starts, dtype=np.int64),
        quantity=np.maximum(np.asarray(mine.quantity, dtype=np.float64), 0.0),
    )
    rated = rate(group.plan, subs, [iu])
    # iter_lines + one cached sort key: RatedLines.by_subscription() recomputes the plan's
    # period names for every line, which dominates a 10,000-customer close.
    charge_pos = {c.id: i for i, c in enumerate(group.plan.charges)}
    period_pos = {name: i for i, name in enumerate(group.plan.period_names())}
    per_local: list[list[LineItem]] = [[] for _ in group.segments]
    for item in rated.iter_lines():
        per_local[item.subscription].append(item)
    out: dict[int, list[LineItem]] = {}
    peaks: dict[int, dict[str, Decimal]] = {}
    for k, g in enumerate(idx.tolist()):
        peaks[int(g)] = {
            cid: Decimal(int(p[k])).scaleb(-QUANTITY_EXPONENT) for cid, p in rated.peaks.items()
        }
        out[int(g)] = sorted(
            per_local[k],
            key=lambda li: (
                charge_pos[li.charge_id],
                -1 if li.period is None else period_pos[li.period],
                -1 if li.tier is None else li.tier,
                KIND_ORDER[li.kind],
            ),
        )
    return GroupResult(out, peaks)
