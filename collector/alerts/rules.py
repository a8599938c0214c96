"""Alert rules and the threshold each one sets for a period (pure)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from collector.errors import NotificationError

__all__ = ["AlertRule", "Metric", "limit_for"]


class Metric(enum.StrEnum):
    QUANTITY = "quantity"  # usage of the customer's meters of ``unit`` in the period so far
    AMOUNT = "amount"  # the running charge of the period so far (invoice total, tax included)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """``threshold`` is absolute (a quantity in ``unit``, an amount in the customer's
    currency) or, if ``relative``, a percentage of the previous period's value."""

    rule_id: int
    owner: str
    customer_id: int | None
    metric: Metric
    unit: str | None
    threshold: Decimal
    relative: bool
    name: str = ""
    active: bool = True

    def __post_init__(self) -> None:
        if self.owner not in ("customer", "staff"):
            raise NotificationError("owner must be customer or staff")
        if self.owner == "customer" and self.customer_id is None:
            raise NotificationError("a customer's rule needs its customer_id")
        if not self.threshold > 0:
            raise NotificationError("threshold must be > 0")
        if self.metric is Metric.QUANTITY and not self.unit:
            raise NotificationError("a quantity rule needs the unit of the meters")


def limit_for(rule: AlertRule, previous: Decimal | None) -> Decimal | None:
    """The value at which ``rule`` fires this period: its threshold, or threshold % of the
    previous period's value (None when there is no previous value to compare with)."""
    if not rule.relative:
        return rule.threshold
    if previous is None or previous <= 0:
        return None
    return previous * rule.threshold / Decimal(100)
