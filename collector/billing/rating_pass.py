"""One set-based rating pass: segments + usage rows → lines per segment (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from collector.billing.drafting import SegmentFacts, segment_facts
from collector.billing.periods import BillingPeriod, PeriodKey
from collector.billing.pricing import group_segments, rate_group
from collector.billing.ratchets import PeakHistory, previous_peaks
from collector.billing.segments import Segment, assign_usage
from collector.rating import LineItem, LineKind, Plan
from collector.rating.charges import Recurring
from collector.storage.billing_usage_store import UsageRows

InAdvance = Literal["exclude", "only", "keep"]


def advance_charge_ids(plan: Plan) -> frozenset[str]:
    """Ids of the plan's recurring fees billed in advance."""
    return frozenset(c.id for c in plan.charges if isinstance(c, Recurring) and c.pay_in_advance)


def _split_advance(
    plan: Plan, lines: dict[int, list[LineItem]], mode: InAdvance
) -> dict[int, list[LineItem]]:
    ids = advance_charge_ids(plan)
    if mode == "keep" or (not ids and mode == "exclude"):
        return lines
    ahead = mode == "only"
    return {
        k: [li for li in v if (li.charge_id in ids and li.kind is LineKind.RECURRING) == ahead]
        for k, v in lines.items()
    }


@dataclass(frozen=True, slots=True)
class RatedSegments:
    facts: list[SegmentFacts]
    lines: dict[int, list[LineItem]]  # segment index → lines in invoice order
    peaks: dict[int, dict[str, Decimal]]  # segment index → demand charge id → actual peak


def rate_segments(
    segments: Sequence[Segment],
    cycles: Sequence[BillingPeriod],
    usage: UsageRows,
    plans: Mapping[int, Plan],
    units: Mapping[int, str],
    *,
    keys: Mapping[int, PeriodKey] | None = None,
    history: PeakHistory | None = None,
    billed_in_advance: Mapping[int, Decimal] | None = None,
    in_advance: InAdvance = "exclude",
) -> RatedSegments:
    """Assign usage to segments and rate every (plan version, unit) group in one engine call.

    Demand ratchets see ``history`` (final invoices' peaks) relative to ``keys[segment.index]``,
    the period each segment is billed in; without them ratchets have no history.
    ``billed_in_advance``: per segment index, what interim invoices of its period billed
    (deducted by the progressive billing charge; ``interim.advance_by_segment``).
    ``in_advance``: the lines of ``pay_in_advance`` recurring fees are left out (``exclude``:
    the period's invoice), kept alone (``only``: the advance invoice) or kept (``keep``)."""
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
    peaks: dict[int, dict[str, Decimal]] = {}
    for group in group_segments(segments, plans, units):
        prev = None
        if keys is not None and history:
            prev = previous_peaks(group.plan, group.segments, keys, history)
        result = rate_group(group, seg_usage, cycles, prev, billed_in_advance)
        lines.update(_split_advance(group.plan, result.lines, in_advance))
        peaks.update(result.peaks)
    return RatedSegments(facts, lines, peaks)
