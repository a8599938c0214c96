"""One set-based rating pass: segments + usage rows → lines per segment (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collector.billing.drafting import SegmentFacts, segment_facts
from collector.billing.periods import BillingPeriod
from collector.billing.pricing import group_segments, rate_group
from collector.billing.segments import Segment, assign_usage
from collector.rating import LineItem, Plan
from collector.storage.billing_usage_store import UsageRows


@dataclass(frozen=True, slots=True)
class RatedSegments:
    facts: list[SegmentFacts]
    lines: dict[int, list[LineItem]]  # segment index → lines in invoice order


def rate_segments(
    segments: Sequence[Segment],
    cycles: Sequence[BillingPeriod],
    usage: UsageRows,
    plans: Mapping[int, Plan],
    units: Mapping[int, str],
) -> RatedSegments:
    """Assign usage to segments and rate every (plan version, unit) group in one engine call."""
    seg_usage = assign_usage(
        segments,
        usage.series,
        usage.bucket,
        quantity=usage.quantity,
        estimated=usage.estimated,
        readings=usage.readings,
    )
    facts = segment_facts(seg_usage, len(segments))
    lines: dict[int, list[LineItem]] = {}
    for group in group_segments(segments, plans, units):
        lines.update(rate_group(group, seg_usage, cycles))
    return RatedSegments(facts, lines)
