"""Usage broken down by the time-of-use periods of a plan's schedule (pure, numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collector.analytics.model import BUCKET_S, UsageGrid
from collector.errors import AnalyticsError
from collector.rating import Plan
from collector.rating.tou_table import build_table

__all__ = ["TouBreakdown", "tou_breakdown"]


@dataclass(frozen=True, slots=True)
class TouBreakdown:
    """Quantity and estimated quantity per schedule period name (in the plan's zone)."""

    periods: tuple[str, ...]
    quantity: tuple[float, ...]
    estimated: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.periods, self.quantity, strict=True))


def tou_breakdown(grid: UsageGrid, plan: Plan) -> TouBreakdown:
    """Each bucket's usage assigned to the schedule period its start falls in (weekends and the
    plan's holidays use the weekend schedule, as rating does)."""
    if plan.schedule is None:
        raise AnalyticsError(f"plan {plan.id!r} has no time-of-use schedule")
    names = plan.period_names()
    table = build_table(plan, grid.start, grid.end - BUCKET_S)
    idx = table.lookup(grid.starts).astype(np.int64)
    q = np.bincount(idx, weights=grid.quantity, minlength=len(names))
    e = np.bincount(idx, weights=grid.estimated, minlength=len(names))
    return TouBreakdown(
        names, tuple(float(x) for x in q), tuple(float(x) for x in e)
    )
