"""Reads for the customer portal: a customer's meters (through its subscriptions), its share
of their usage, its latest invoices and the current period's draft.

Usage comes from ``usage_queries.usage_for_series`` (15-minute rows) and is clipped to the
customer's subscription windows by the pure ``collector.portal.consumption``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from collector.errors import UsageError
from collector.portal.consumption import MeterUsage, customer_share
from collector.portal.model import InvoiceSummary, PortalMeter, Window
from collector.storage.database import translate_errors
from collector.storage.usage_queries import usage_for_series
from collector.usage import BUCKET_15M_S, Resolution, bucket_edges

__all__ = [
    "customer_meter",
    "customer_meters",
    "latest_final_invoices",
    "latest_reading_time",
    "meter_usage",
    "period_draft",
]

Conn = psycopg.Connection[Any]


def _meters(rows: Sequence[Sequence[Any]]) -> list[PortalMeter]:
    by_series: dict[int, list[Sequence[Any]]] = {}
    for r in rows:
        by_series.setdefault(int(r[0]), []).append(r)
    return [
        PortalMeter(
            series_id=sid,
            device_id=rs[0][1],
            meter=rs[0][2],
            metric=rs[0][3],
            unit=rs[0][4],
            kind=rs[0][5],
            windows=tuple(Window(r[6], r[7]) for r in rs),
        )
        for sid, rs in by_series.items()
    ]


_METER_SQL = (
    "SELECT s.series_id, s.device_id, s.meter, s.metric, s.unit, s.kind, b.valid_from,"
    " b.valid_to FROM subscriptions b JOIN series s USING (series_id)"
    " WHERE b.customer_id = %s {} ORDER BY s.device_id, s.meter, s.metric, s.series_id,"
    " b.valid_from"
)


def customer_meters(conn: Conn, customer_id: int) -> list[PortalMeter]:
    """Every meter the customer was ever subscribed to, with its windows."""
    with translate_errors("load portal meters"):
        rows = conn.execute(_METER_SQL.format(""), (customer_id,)).fetchall()
    return _meters(rows)


def customer_meter(conn: Conn, customer_id: int, series_id: int) -> PortalMeter | None:
    """The meter if the customer was ever subscribed to it, else None."""
    with translate_errors("load portal meter"):
        rows = conn.execute(
            _METER_SQL.format("AND b.series_id = %s"), (customer_id, series_id)
        ).fetchall()
    found = _meters(rows)
    return found[0] if found else None


def meter_usage(
    conn: Conn,
    meters: Sequence[PortalMeter],
    start: datetime,
    end: datetime,
    *,
    resolution: Resolution | str,
    tz: str,
) -> list[MeterUsage]:
    """The customer's share of each meter's usage in the ``resolution`` buckets (in ``tz``)
    overlapping ``[start, end)``. Meters that were the customer's for the whole range are
    summed by the database at ``resolution``; the others are read per 15 minutes and clipped to
    the customer's windows (``collector.portal.consumption``)."""
    res = Resolution(resolution)
    edges = bucket_edges(start.timestamp(), end.timestamp(), res, tz)
    if np.any(edges % BUCKET_15M_S):
        raise UsageError(f"zone {tz} is not aligned to 15-minute buckets")
    lo = datetime.fromtimestamp(int(edges[0]), UTC)
    hi = datetime.fromtimestamp(int(edges[-1]), UTC)
    whole = [m for m in meters if m.covers(lo, hi)]
    partial = [m for m in meters if not m.covers(lo, hi)]
    out: dict[int, MeterUsage] = {}
    if whole:  # the customer's share is all of it: buckets summed in SQL
        agg = usage_for_series(conn, [m.series_id for m in whole], lo, hi, resolution=res, tz=tz)
        for i, m in enumerate(whole):
            out[m.series_id] = MeterUsage(
                series_id=m.series_id,
                resolution=res,
                starts=agg.starts,
                ends=agg.ends,
                quantity=agg.quantity[i],
                estimated=agg.estimated[i],
                coverage=agg.coverage[i],
                subscribed=np.ones(agg.starts.shape[0]),
            )
    if partial:  # clipped per 15-minute bucket to the customer's windows
        raw = usage_for_series(
            conn, [m.series_id for m in partial], lo, hi, resolution=Resolution.M15, tz="UTC"
        )
        for i, m in enumerate(partial):
            out[m.series_id] = customer_share(
                m.series_id,
                raw.starts,
                quantity=raw.quantity[i],
                estimated=raw.estimated[i],
                coverage=raw.coverage[i],
                windows=m.windows,
                resolution=res,
                tz=tz,
            )
    return [out[m.series_id] for m in meters]


_INVOICE_SQL = (
    "SELECT invoice_id, number, status, period, period_start, period_end, currency, subtotal,"
    " tax, total, drafted_at, finalized_at FROM invoices WHERE customer_id = %s AND {}"
)


def latest_final_invoices(conn: Conn, customer_id: int, *, limit: int = 5) -> list[InvoiceSummary]:
    """The customer's most recent final invoices, newest period first."""
    with translate_errors("load portal invoices"):
        rows = conn.execute(
            _INVOICE_SQL.format("status = 'final' ORDER BY period_start DESC, invoice_id DESC")
            + " LIMIT %s",
            (customer_id, limit),
        ).fetchall()
    return [InvoiceSummary(*r) for r in rows]


def period_draft(conn: Conn, customer_id: int, period: str) -> InvoiceSummary | None:
    """The customer's draft invoice for ``period`` (``YYYY-MM``), if a close run made one."""
    with translate_errors("load portal draft"):
        row = conn.execute(
            _INVOICE_SQL.format("status = 'draft' AND period = %s"), (customer_id, period)
        ).fetchone()
    return InvoiceSummary(*row) if row else None


def latest_reading_time(
    conn: Conn, meters: Sequence[PortalMeter], now: datetime
) -> datetime | None:
    """When the newest reading of the customer's meters was taken, counting only readings of
    the times each meter was the customer's (and not after ``now``); None without readings."""
    froms: list[datetime] = []
    tos: list[datetime] = []
    sids: list[int] = []
    for m in meters:
        for w in m.windows:
            sids.append(m.series_id)
            froms.append(w.start)
            tos.append(min(w.end, now) if w.end is not None else now)
    if not sids:
        return None
    with translate_errors("load portal data freshness"):
        row = conn.execute(
            "SELECT max(r.ts) FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])"
            " AS w(sid, t0, t1) CROSS JOIN LATERAL (SELECT ts FROM readings"
            " WHERE series_id = w.sid AND ts >= w.t0 AND ts <= w.t1"
            " ORDER BY ts DESC LIMIT 1) r",
            (sids, froms, tos),
        ).fetchone()
    return row[0] if row else None
