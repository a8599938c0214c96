"""Interval usage for billing: the usage engine's packed ``usage_15m_daily`` (helper D) read in
bulk for many series at once (binary COPY decoded by numpy), plus the late-data and
stale-draft queries on ``usage_15m``, which use the ``usage_15m (updated_at)`` index of 0021.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg

from collector.errors import StorageError
from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


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


_PG_EPOCH_S: Final = 946_684_800  # 2000-01-01T00:00:00Z in Unix seconds
_SLOTS: Final = 96  # quarter hours per UTC day in usage_15m_daily
_COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER_LEN: Final = 19  # signature, flags, header-extension length (no extension)
# One binary COPY tuple of (series_id, day, quantity, estimated, reading_count): every field has
# a fixed size (the bytea lengths are CHECK constraints of usage_15m_daily), so a whole result
# decodes with one numpy.frombuffer.
_DAILY: Final = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_sid", ">i4"),
        ("sid", ">i8"),
        ("len_day", ">i4"),
        ("day", ">i8"),
        ("len_q", ">i4"),
        ("q", ">f8", (_SLOTS,)),
        ("len_e", ">i4"),
        ("e", ">f8", (_SLOTS,)),
        ("len_rc", ">i4"),
        ("rc", ">i4", (_SLOTS,)),
    ]
)
_LENGTHS: Final = {
    "nfields": 5,
    "len_sid": 8,
    "len_day": 8,
    "len_q": 8 * _SLOTS,
    "len_e": 8 * _SLOTS,
    "len_rc": 4 * _SLOTS,
}


def _decode_daily(data: bytes) -> npt.NDArray[np.void]:
    """The tuples of a binary COPY of ``usage_15m_daily`` as one structured array."""
    body = memoryview(data)[_COPY_HEADER_LEN:-2]
    if not data.startswith(_COPY_HEADER) or len(body) % _DAILY.itemsize:
        raise StorageError("unexpected binary COPY layout of usage_15m_daily")
    rows = np.frombuffer(body, dtype=_DAILY)
    for name, expected in _LENGTHS.items():
        if rows.size and not bool((rows[name] == expected).all()):
            raise StorageError(f"unexpected {name} in usage_15m_daily (NULL or resized column)")
    return rows


def load_usage_rows(
    conn: Conn, series_ids: Sequence[int], start: datetime, end: datetime
) -> UsageRows:
    """All 15-minute usage of ``series_ids`` with buckets in ``[start, end)``, in one query.

    Reads the usage engine's packed ``usage_15m_daily`` (helper D keeps it in step with
    ``usage_15m`` in the same transaction; 96 quarter hours per series and UTC day, so the
    server reads 96x fewer rows than from ``usage_15m``) with one binary ``COPY … TO STDOUT``
    of fixed-size tuples, decoded by one ``numpy.frombuffer`` and flattened to one row per
    interval that has usage, an estimate or readings: no Python work per row or per interval.
    """
    if not series_ids:
        return UsageRows.empty()
    lo, hi = int(start.timestamp()), int(end.timestamp())
    d0, d1 = lo // 86_400 * 86_400, -(-hi // 86_400) * 86_400
    buf = bytearray()
    with (
        translated("load interval usage"),
        conn.cursor() as cur,
        cur.copy(
            "COPY (SELECT series_id, day, quantity, estimated, reading_count"
            " FROM usage_15m_daily WHERE series_id = ANY(%s) AND day >= %s AND day < %s)"
            " TO STDOUT (FORMAT BINARY)",
            (list(series_ids), _utc(d0), _utc(d1)),
        ) as copy,
    ):
        while block := copy.read():
            buf += block
    rows = _decode_daily(bytes(buf))
    if not rows.size:
        return UsageRows.empty()
    day_s = rows["day"].astype(np.int64) // 1_000_000 + _PG_EPOCH_S
    q = rows["q"].astype(np.float64).reshape(-1)  # native byte order before any arithmetic
    e = rows["e"].astype(np.float64).reshape(-1)
    rc = rows["rc"].astype(np.int64).reshape(-1)
    starts = (day_s[:, None] + np.arange(0, 86_400, 900, dtype=np.int64)).reshape(-1)
    keep = (starts >= lo) & (starts < hi) & ((q != 0) | (rc != 0) | (e != 0))
    return UsageRows(
        series=np.repeat(rows["sid"].astype(np.int64), _SLOTS)[keep],
        bucket=starts[keep],
        quantity=q[keep],
        estimated=e[keep],
        readings=rc[keep],
    )


def _utc(unix_s: int) -> datetime:
    return datetime.fromtimestamp(unix_s, UTC)


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
    conn: Conn,
    customer_ids: Sequence[int],
    before_period: str,
    now: datetime,
    horizon: timedelta,
) -> list[LateInvoice]:
    """Final invoices of earlier periods (ending within ``horizon`` of ``now``) whose meters got
    usage rows written after the finalization (``usage_15m.updated_at > finalized_at``)."""
    with translated("find late usage"):
        floor = conn.execute(
            "SELECT min(finalized_at) FROM invoices WHERE customer_id = ANY(%s)"
            " AND status = 'final' AND period < %s AND period_end > %s",
            (list(customer_ids), before_period, now - horizon),
        ).fetchone()
        if floor is None or floor[0] is None:
            return []
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
            "   AND u.updated_at > i.finalized_at AND u.updated_at > %s)"
            " ORDER BY i.customer_id, i.period",
            (list(customer_ids), before_period, now - horizon, floor[0]),
        ).fetchall()
    return [LateInvoice(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]


def billed_by_subscription(
    conn: Conn, invoice_ids: Sequence[int], exclude_invoice_ids: Sequence[int]
) -> dict[tuple[int, int], Any]:
    """Exact amount billed so far per (corrected invoice, subscription): the invoice's own lines
    plus every adjustment that references it, except on ``exclude_invoice_ids`` (the drafts
    being recomputed), less every credit note line that credits it."""
    with translated("sum billed amounts"):
        rows = conn.execute(
            "SELECT coalesce(l.corrects_invoice_id, l.invoice_id), l.subscription_id,"
            " sum(l.amount_unrounded) FROM invoice_lines l"
            " WHERE (l.invoice_id = ANY(%s) OR l.corrects_invoice_id = ANY(%s))"
            " AND l.subscription_id IS NOT NULL AND NOT (l.invoice_id = ANY(%s))"
            " GROUP BY 1, 2"
            " UNION ALL SELECT c.corrects_invoice_id, cl.subscription_id,"
            " -sum(cl.amount_unrounded) FROM credit_note_lines cl"
            " JOIN credit_notes c USING (credit_note_id)"
            " WHERE c.corrects_invoice_id = ANY(%s) AND cl.subscription_id IS NOT NULL"
            " GROUP BY 1, 2",
            (list(invoice_ids), list(invoice_ids), list(exclude_invoice_ids), list(invoice_ids)),
        ).fetchall()
    out: dict[tuple[int, int], Any] = {}
    for r in rows:  # invoice lines and credit note lines of one key add up
        k = (int(r[0]), int(r[1]))
        out[k] = out.get(k, 0) + r[2]
    return out


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
        floor = conn.execute(
            "SELECT min(drafted_at) FROM invoices WHERE period = %s AND status = 'draft'"
            " AND customer_id = ANY(%s)",
            (period, list(customer_ids)),
        ).fetchone()
        if floor is None or floor[0] is None:
            return []
        rows = conn.execute(
            "SELECT i.customer_id FROM invoices i WHERE i.period = %s AND i.status = 'draft'"
            " AND i.customer_id = ANY(%s) AND EXISTS ("
            "   SELECT 1 FROM subscriptions s JOIN usage_15m u ON u.series_id = s.series_id"
            "   WHERE s.customer_id = i.customer_id AND s.valid_from < i.period_end"
            "   AND coalesce(s.valid_to, 'infinity') > i.period_start"
            "   AND u.bucket >= i.period_start AND u.bucket < i.period_end"
            "   AND u.updated_at > i.drafted_at AND u.updated_at > %s)"
            " ORDER BY i.customer_id",
            (period, list(customer_ids), floor[0]),
        ).fetchall()
    return [int(r[0]) for r in rows]
