"""Interval usage for billing: ``usage_15m`` (maintained by the usage engine, helper D) read
set-based for many series at once with a binary ``COPY ... TO STDOUT`` decoded by numpy, plus
the late-data query of the correction logic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg

from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_PG_EPOCH_S: Final = 946_684_800  # 2000-01-01T00:00:00Z
_HEADER_LEN: Final = 19
_ROW: Final = np.dtype([
    ("n", ">i2"), ("l1", ">i4"), ("series", ">i8"), ("l2", ">i4"), ("bucket", ">i8"),
    ("l3", ">i4"), ("quantity", ">f8"), ("l4", ">i4"), ("estimated", ">f8"),
    ("l5", ">i4"), ("readings", ">i4"),
])


@dataclass(frozen=True, slots=True)
class UsageRows:
    """Flat interval usage: row ``i`` is the 15-minute bucket starting ``bucket[i]`` (Unix s)."""

    series: I64
    bucket: I64
    quantity: F64
    estimated: F64
    readings: I64

    @classmethod
    def empty(cls) -> UsageRows:
        i = np.zeros(0, dtype=np.int64)
        f = np.zeros(0, dtype=np.float64)
        return cls(i, i, f, f, i)

    def __len__(self) -> int:
        return int(self.series.shape[0])


def decode_usage_copy(data: bytes) -> UsageRows:
    """Decode the binary COPY stream of (series_id, bucket, quantity, estimated, reading_count)."""
    body = data[_HEADER_LEN:len(data) - 2]
    rows = np.frombuffer(body, dtype=_ROW)
    return UsageRows(
        series=rows["series"].astype(np.int64),
        bucket=(rows["bucket"] // 1_000_000 + _PG_EPOCH_S).astype(np.int64),
        quantity=rows["quantity"].astype(np.float64),
        estimated=rows["estimated"].astype(np.float64),
        readings=rows["readings"].astype(np.int64),
    )


def load_usage_rows(conn: Conn, series_ids: Sequence[int], start: datetime, end: datetime) -> UsageRows:
    """All ``usage_15m`` rows of ``series_ids`` with buckets in ``[start, end)``, in one query."""
    if not series_ids:
        return UsageRows.empty()
    buf = bytearray()
    with translated("load interval usage"), conn.cursor() as cur, cur.copy(
        "COPY (SELECT series_id, bucket, quantity, estimated, reading_count FROM usage_15m"
        " WHERE series_id = ANY(%s) AND bucket >= %s AND bucket < %s"
        " ORDER BY series_id, bucket) TO STDOUT (FORMAT BINARY)",
        (list(series_ids), start, end),
    ) as copy:
        for chunk in copy:
            buf += chunk
    if len(buf) <= _HEADER_LEN + 2:
        return UsageRows.empty()
    return decode_usage_copy(bytes(buf))


@dataclass(frozen=True, slots=True)
class LateInvoice:
    """A final invoice whose service period received usage after it was finalized."""

    invoice_id: int
    customer_id: int
    number: str
    period: str
    period_start: datetime
    period_end: datetime
    finalized_at: datetime


def invoices_with_late_usage(
    conn: Conn, customer_ids: Sequence[int], before_period: str, now: datetime,
    horizon: timedelta,
) -> list[LateInvoice]:
    """Final invoices of earlier periods (ending within ``horizon`` of ``now``) whose meters got
    usage rows written after the finalization (``usage_15m.updated_at > finalized_at``)."""
    with translated("find late usage"):
        rows = conn.execute(
            "SELECT i.invoice_id, i.customer_id, i.number, i.period, i.period_start,"
            " i.period_end, i.finalized_at FROM invoices i"
            " WHERE i.customer_id = ANY(%s) AND i.status = 'final' AND i.period < %s"
            " AND i.period_end > %s AND EXISTS ("
            "   SELECT 1 FROM subscriptions s JOIN usage_15m u ON u.series_id = s.series_id"
            "   WHERE s.customer_id = i.customer_id AND s.valid_from < i.period_end"
            "   AND coalesce(s.valid_to, 'infinity') > i.period_start"
            "   AND u.bucket >= greatest(s.valid_from, i.period_start)"
            "   AND u.bucket < least(coalesce(s.valid_to, 'infinity'), i.period_end)"
            "   AND u.updated_at > i.finalized_at)"
            " ORDER BY i.customer_id, i.period",
            (list(customer_ids), before_period, now - horizon),
        ).fetchall()
    return [LateInvoice(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]


def billed_by_subscription(
    conn: Conn, invoice_ids: Sequence[int], exclude_invoice_ids: Sequence[int]
) -> dict[tuple[int, int], Any]:
    """Exact amount billed so far per (corrected invoice, subscription): the invoice's own lines
    plus every adjustment that references it, except on ``exclude_invoice_ids`` (the drafts
    being recomputed)."""
    with translated("sum billed amounts"):
        rows = conn.execute(
            "SELECT coalesce(l.corrects_invoice_id, l.invoice_id), l.subscription_id,"
            " sum(l.amount_unrounded) FROM invoice_lines l"
            " WHERE (l.invoice_id = ANY(%s) OR l.corrects_invoice_id = ANY(%s))"
            " AND l.subscription_id IS NOT NULL AND NOT (l.invoice_id = ANY(%s))"
            " GROUP BY 1, 2",
            (list(invoice_ids), list(invoice_ids), list(exclude_invoice_ids)),
        ).fetchall()
    return {(int(r[0]), int(r[1])): r[2] for r in rows}


def series_info(conn: Conn, series_ids: Sequence[int]) -> dict[int, tuple[str, str, str, str]]:
    """``series_id -> (device_id, meter, metric, unit)``."""
    with translated("load series"):
        rows = conn.execute(
            "SELECT series_id, device_id, meter, metric, unit FROM series"
            " WHERE series_id = ANY(%s)",
            (list(series_ids),),
        ).fetchall()
    return {int(r[0]): (r[1], r[2], r[3], r[4]) for r in rows}


def stale_draft_customers(conn: Conn, period: str, customer_ids: Sequence[int]) -> list[int]:
    """Customers whose draft of ``period`` is older than some usage of its meters in the period."""
    with translated("find stale drafts"):
        rows = conn.execute(
            "SELECT i.customer_id FROM invoices i WHERE i.period = %s AND i.status = 'draft'"
            " AND i.customer_id = ANY(%s) AND EXISTS ("
            "   SELECT 1 FROM subscriptions s JOIN usage_15m u ON u.series_id = s.series_id"
            "   WHERE s.customer_id = i.customer_id AND s.valid_from < i.period_end"
            "   AND coalesce(s.valid_to, 'infinity') > i.period_start"
            "   AND u.bucket >= i.period_start AND u.bucket < i.period_end"
            "   AND u.updated_at > i.drafted_at)"
            " ORDER BY i.customer_id",
            (period, list(customer_ids)),
        ).fetchall()
    return [int(r[0]) for r in rows]
