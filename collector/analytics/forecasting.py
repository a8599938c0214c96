"""A customer's bill forecast from the database (orchestrates storage calls; the maths is in
``forecast`` and ``bill_forecast``).

``customer_bill_forecast(conn, customer_id, now)`` is what the staff API and the customer
portal call: the period containing ``now`` in the customer's zone and billing cycle, its
subscriptions cut to the period, their plan versions, and ``HISTORY_DAYS`` of each meter's
15-minute usage before ``now`` (one binary COPY of ``usage_15m_daily``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg

from collector.analytics.bill_forecast import BillForecast, forecast_bill
from collector.analytics.forecast import ForecastConfig
from collector.analytics.grid import matrix_from_rows
from collector.analytics.model import BUCKET_S
from collector.billing.model import Customer
from collector.billing.periods import BillingPeriod, PeriodKey, period_for, zone
from collector.billing.pricing import parse_plan_document
from collector.billing.segments import Segment, build_segments
from collector.errors import AnalyticsError
from collector.rating import Plan
from collector.storage import billing_store
from collector.storage.billing_usage_store import load_usage_rows, series_info

__all__ = [
    "HISTORY_DAYS",
    "CustomerContext",
    "current_period",
    "customer_bill_forecast",
    "forecast_from_context",
    "load_customer_context",
]

Conn = psycopg.Connection[Any]
HISTORY_DAYS: Final = 56


def current_period(now: datetime, time_zone: str, anchor_day: int) -> BillingPeriod:
    """The billing period of a customer (zone, anchor day) that contains ``now``."""
    local = now.astimezone(zone(time_zone))
    key = PeriodKey(local.year, local.month)
    for k in (key, key.previous()):
        p = period_for(k, time_zone, anchor_day)
        if p.contains(now):
            return p
    raise AnalyticsError(f"no billing period contains {now.isoformat()}")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """Everything a customer's forecast and dashboard need, loaded in a few queries: the
    period containing ``now``, its segments and plans, and each meter's 15-minute history
    (``history[i]`` for ``series_ids[i]``, from ``history_start`` to ``until``)."""

    customer: Customer
    period: BillingPeriod
    segments: list[Segment]
    plans: dict[int, Plan]
    units: dict[int, str]
    series_ids: npt.NDArray[np.int64]
    history: npt.NDArray[np.float64]
    estimated: npt.NDArray[np.float64]
    history_start: int
    until: datetime


def load_customer_context(conn: Conn, customer_id: int, now: datetime) -> CustomerContext:
    """The customer's current period and its meters' recent history (see CustomerContext)."""
    if now.tzinfo is None:
        raise AnalyticsError("now needs a time zone")
    customer = billing_store.get_customer(conn, customer_id)
    period = current_period(now, customer.spec.time_zone, customer.spec.anchor_day)
    subs = billing_store.subscriptions_overlapping(conn, [customer_id], period.start, period.end)
    segments = build_segments({customer_id: period}, subs)
    if not segments:
        raise AnalyticsError(f"customer {customer_id} has no meters in period {period.key}")
    plans = {
        v.plan_version_id: parse_plan_document(v.document)
        for v in billing_store.plan_versions(conn, sorted({s.plan_version_id for s in segments}))
    }
    series = np.asarray(sorted({s.series_id for s in segments}), dtype=np.int64)
    units = {sid: info[3] for sid, info in series_info(conn, series.tolist()).items()}
    t = min(max(now, period.start + timedelta(minutes=15)), period.end)
    t_s = int(t.timestamp()) // BUCKET_S * BUCKET_S
    h0 = min(t_s - HISTORY_DAYS * 86_400, int(period.start.timestamp()))
    h0 = h0 // BUCKET_S * BUCKET_S
    rows = load_usage_rows(conn, series.tolist(), datetime.fromtimestamp(h0, now.tzinfo), t)
    history = matrix_from_rows(
        rows.series, rows.bucket, rows.quantity, series_ids=series, start=h0, end=t_s
    )
    estimated = matrix_from_rows(
        rows.series, rows.bucket, rows.estimated, series_ids=series, start=h0, end=t_s
    )
    return CustomerContext(
        customer, period, segments, plans, units, series, history, estimated, h0, t
    )


def forecast_from_context(
    ctx: CustomerContext, config: ForecastConfig | None = None
) -> BillForecast:
    """The bill forecast of a loaded customer context."""
    holidays = sorted({d for p in ctx.plans.values() for d in p.holidays})
    return forecast_bill(
        ctx.customer,
        ctx.period,
        ctx.segments,
        ctx.plans,
        ctx.units,
        series_ids=ctx.series_ids,
        history=ctx.history,
        history_start=ctx.history_start,
        now=ctx.until,
        holidays=holidays,
        config=config,
    )


def customer_bill_forecast(
    conn: Conn, customer_id: int, now: datetime, config: ForecastConfig | None = None
) -> BillForecast:
    """The forecast of ``customer_id``'s bill for the period containing ``now``."""
    return forecast_from_context(load_customer_context(conn, customer_id, now), config)
