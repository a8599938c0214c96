"""Progressive billing: when is an interim invoice due, and for how much (pure).

Lago's rule: an interim invoice is issued whenever a period's usage amount crosses a threshold;
it bills the usage not billed yet, and the period's final invoice deducts everything interim
invoices billed. Stateless: given the usage amount so far and what interim invoices of the
period billed, an interim invoice is due when some threshold lies in ``(billed, usage]``.
"""

from __future__ import annotations

from decimal import Decimal

from collector.errors import RatingError
from collector.rating.charges import ProgressiveBilling
from collector.rating.plan import Plan


def progressive_charge(plan: Plan) -> ProgressiveBilling | None:
    """The plan's progressive billing charge, if any."""
    for ch in plan.charges:
        if isinstance(ch, ProgressiveBilling):
            return ch
    return None


def interim_due(plan: Plan, usage_amount: Decimal, billed: Decimal) -> Decimal | None:
    """The amount of the interim invoice due now, or None.

    ``usage_amount``: the rounded usage lines of the period so far (every line except
    recurring fees, minimum true-ups and discounts). ``billed``: what interim invoices of the
    period have billed already.
    """
    ch = progressive_charge(plan)
    if ch is None:
        return None
    if usage_amount < 0 or billed < 0:
        raise RatingError("usage amount and billed amount must be non-negative")
    if any(billed < t <= usage_amount for t in ch.thresholds):
        return usage_amount - billed
    return None
