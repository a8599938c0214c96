"""Price plans and the rating engine (pure: numpy + Decimal, no I/O).

Public API::

    plan = load_plan("plan.yaml")                # or parse_plan(mapping) / plan_from_text(text)
    subs = Subscriptions(period_start=..., period_end=...)          # int64 Unix seconds, per sub
    usage = [IntervalUsage(unit="Wh", interval_seconds=900,
                           subscription=..., start=..., quantity=...)]
    rated = rate(plan, subs, usage)              # RatedLines (columnar, exact integers)
    rated.by_subscription()[i]                   # list[LineItem] in invoice order
    rated.totals_minor()                         # int64 rounded total per subscription (cents)
    rated.peaks["demand"]                        # actual peaks (micro-units) for future ratchets

Several plans: ``rate_grouped(plans, plan_index, subs, usage)``. A single quantity:
``rate_quantity(plan, Decimal("1234.5"))``. ``collector.rating.reference`` is an obviously
correct (slow) Decimal implementation of the same semantics used to test the engine.
"""

from collector.rating.currencies import MINOR_UNIT_EXPONENTS, minor_unit_exponent
from collector.rating.engine import rate, rate_grouped, rate_quantity
from collector.rating.inputs import IntervalUsage, Subscriptions
from collector.rating.lines import LineBlock, LineItem, LineKind, RatedLines
from collector.rating.money import (
    QUANTITY_EXPONENT,
    Money,
    quantize_quantity,
    quantize_reading,
    round_amount,
)
from collector.rating.plan import (
    Demand,
    Graduated,
    MinimumCommitment,
    Package,
    PerUnit,
    Plan,
    Recurring,
    Tier,
    TimeOfUse,
    Volume,
    load_plan,
    parse_plan,
    plan_from_text,
)
from collector.rating.schedule import Schedule

__all__ = [
    "MINOR_UNIT_EXPONENTS",
    "QUANTITY_EXPONENT",
    "Demand",
    "Graduated",
    "IntervalUsage",
    "LineBlock",
    "LineItem",
    "LineKind",
    "MinimumCommitment",
    "Money",
    "Package",
    "PerUnit",
    "Plan",
    "RatedLines",
    "Recurring",
    "Schedule",
    "Subscriptions",
    "Tier",
    "TimeOfUse",
    "Volume",
    "load_plan",
    "minor_unit_exponent",
    "parse_plan",
    "plan_from_text",
    "quantize_quantity",
    "quantize_reading",
    "rate",
    "rate_grouped",
    "rate_quantity",
    "round_amount",
]
