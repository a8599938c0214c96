"""A customer's dashboard in one call: the period so far per day (measured vs estimated),
against the same days of the previous period, and the bill forecast with the running charge.

``customer_dashboard(conn, customer_id, now)`` is what the portal and the staff API call; it
reads the customer's meters once (``load_customer_context``) and computes everything else
from that in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg

from collector.analytics.bill_forecast import BillForecast
from collector.analytics.forecasting import forecast_from_context, load_customer_context
from collector.analytics.model import BUCKET_S, UsageGrid
from collector.analytics.timeline import Timeline, timeline
from collector.billing.periods import period_for

__all__ = ["Dashboard", "customer_dashboard"]

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Dashboard:
    customer_id: int
    period: str
    tz: str
    days: Timeline  # the period so far, per local day
    so_far: float
    same_days_last_period: float  # the previous period over as many hours as elapsed now
    forecast: BillForecast


def customer_dashboard(conn: Conn, customer_id: int, now: datetime) -> Dashboard:
    ctx = load_customer_context(conn, customer_id, now)
    p0 = int(ctx.period.start.timestamp())
    t = int(ctx.until.timestamp()) // BUCKET_S * BUCKET_S
    j0, j1 = (p0 - ctx.history_start) // BUCKET_S, (t - ctx.history_start) // BUCKET_S
    starts = np.arange(p0, max(t, p0 + BUCKET_S), BUCKET_S, dtype=np.int64)
    q = ctx.history[:, j0:j1].sum(axis=0) if j1 > j0 else np.zeros(1)
    e = ctx.estimated[:, j0:j1].sum(axis=0) if j1 > j0 else np.zeros(1)
    grid = UsageGrid(starts, q, e, np.zeros(starts.shape[0], dtype=np.int64))
    tz = ctx.customer.spec.time_zone
    prev = period_for(ctx.period.key.previous(), tz, ctx.customer.spec.anchor_day)
    q0 = (int(prev.start.timestamp()) - ctx.history_start) // BUCKET_S
    elapsed = j1 - j0
    last = float(ctx.history[:, max(q0, 0) : max(q0, 0) + elapsed].sum())
    return Dashboard(
        customer_id,
        str(ctx.period.key),
        tz,
        timeline(grid, "1d", tz),
        float(q.sum()),
        last,
        forecast_from_context(ctx),
    )
