"""Value objects the portal pages are built from (filled by ``storage.portal_queries``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

__all__ = ["InvoiceSummary", "PortalMeter", "Window"]


@dataclass(frozen=True, slots=True)
class Window:
    """A subscription's validity ``[start, end)``; ``end`` None means open-ended."""

    start: datetime
    end: datetime | None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and (self.end is None or self.end > start)


@dataclass(frozen=True, slots=True)
class PortalMeter:
    """A meter the customer has (or had): the series and the customer's windows on it."""

    series_id: int
    device_id: str
    meter: str
    metric: str
    unit: str
    kind: str
    windows: tuple[Window, ...]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether the customer had the meter at some time in ``[start, end)``."""
        return any(w.overlaps(start, end) for w in self.windows)

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether the customer had the meter during all of ``[start, end)`` (adjacent windows,
        e.g. a plan change, count as one)."""
        reached = start
        for w in sorted(self.windows, key=lambda w: w.start):
            if w.start > reached:
                break
            if w.end is None or w.end >= end:
                return True
            reached = max(reached, w.end)
        return False

    @property
    def usage_unit(self) -> str:
        """The unit of this meter's usage: a gauge's usage is its time integral (kW → kWh,
        m³/h → m³/h·h), counters and deltas count in their own unit."""
        if self.kind != "gauge":
            return self.unit
        return f"{self.unit}h" if self.unit.endswith("W") else f"{self.unit}·h"

    @property
    def name(self) -> str:
        return f"{self.device_id} · {self.meter} · {self.metric}"


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    """The figures of an invoice a portal page lists."""

    invoice_id: int
    number: str | None
    status: str
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    drafted_at: datetime
    finalized_at: datetime | None
