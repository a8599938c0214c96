"""Interval usage for billing: the usage engine's packed ``usage_15m_daily`` read in
bulk for many series at once (one binary COPY per 500 series, decoded by numpy), plus
the late-data and stale-draft queries on ``usage_15m``, which use the ``usage_15m
(updated_at)`` index of 0021.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from collector.errors import StorageError
from collector.storage.billing_chunk_sql import CHUNK_DRAFTS
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
_SERIES_PER_QUERY: Final = 500  # ≤ 500 × 40 days × 1,950 bytes ≈ 39 MB per COPY

# One binary COPY per batch of series. Every row has the same size (NOT NULL columns of fixed
# length: the CHECK constraints of 0010), so the whole stream is decoded by numpy at once as
# an array of records; the length words are checked, so a resized column is an error, never
# misread. The rows come ordered by (series, day) from the primary key, without a sort.
_PACKED_COPY: Final = (
    "COPY (SELECT series_id, day, quantity, estimated, reading_count FROM usage_15m_daily"
    " WHERE series_id = ANY(%s) AND day >= %s AND day < %s ORDER BY series_id, day)"
    " TO STDOUT (FORMAT BINARY)"
)
_PACKED_ROW: Final = np.dtype(
    [
        ("fields", ">i2"),
        ("l_series", ">i4"),
        ("series", ">i8"),
        ("l_day", ">i4"),
        ("day", ">i8"),  # microseconds since 2000-01-01 UTC
        ("l_q", ">i4"),
        ("q", ">f8", (_SLOTS,)),
        ("l_e", ">i4"),
        ("e", ">f8", (_SLOTS,)),
        ("l_rc", ">i4"),
        ("rc", ">i4", (_SLOTS,)),
    ]
)
_PACKED_LENGTHS: Final = {
    "fields": 5,
    "l_series": 8,
    "l_day": 8,
    "l_q": 8 * _SLOTS,
    "l_e": 8 * _SLOTS,
    "l_rc": 4 * _SLOTS,
}
_COPY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"


def _packed_days(
    conn: Conn, series_ids: Sequence[int], d0: datetime, d1: datetime
) -> tuple[I64, I64, F64, F64, I64]:
    """(series, day start in Unix s, quantity, estimated, readings) of every packed day of
    ``series_ids`` in ``[d0, d1)``: one binary COPY, decoded by numpy in one go."""
    with (
        translated("load interval usage"),
        conn.cursor() as cur,
        cur.copy(_PACKED_COPY, (list(series_ids), d0, d1)) as copy,
    ):
        raw = b"".join(copy)
    rows = _decode_copy(raw)
    return (
        rows["series"].astype(np.int64),
        rows["day"].astype(np.int64) // 1_000_000 + _PG_EPOCH_S,
        rows["q"].astype(np.float64).reshape(-1),  # native byte order
        rows["e"].astype(np.float64).reshape(-1),
        rows["rc"].astype(np.int64).reshape(-1),
    )


def _decode_copy(raw: bytes) -> npt.NDArray[np.void]:
    """The records of a binary COPY of ``usage_15m_daily`` rows (header and trailer checked)."""
    head = len(_COPY_SIGNATURE) + 8
    if len(raw) < head + 2 or not raw.startswith(_COPY_SIGNATURE):
        raise StorageError("unexpected binary COPY stream from usage_15m_daily")
    skip = head + int.from_bytes(raw[head - 4 : head], "big")  # header extension
    body = raw[skip:-2]
    if raw[-2:] != b"\xff\xff" or len(body) % _PACKED_ROW.itemsize:
        raise StorageError("unexpected packed layout of usage_15m_daily (resized column)")
    rows = np.frombuffer(body, dtype=_PACKED_ROW)
    for name, size in _PACKED_LENGTHS.items():
        if rows.size and not bool((rows[name] == size).all()):
            raise StorageError("unexpected packed layout of usage_15m_daily (resized column)")
    return rows


def load_usage_rows(
    conn: Conn, series_ids: Sequence[int], start: datetime, end: datetime
) -> UsageRows:
    """All 15-minute usage of ``series_ids`` with buckets in ``[start, end)``.

    Reads the usage engine's packed ``usage_15m_daily`` (kept in step with
    ``usage_15m`` in the same transaction; 96 quarter hours per series and UTC day, so the
    server reads 96x fewer rows than from ``usage_15m``). The packed days of up to 500 series
    come in one binary COPY, which numpy decodes as fixed-size records and flattens to one row
    per interval that has usage, an estimate or readings: no Python work per row or interval.
    Rows come ordered by (series, bucket).
    """
    if not series_ids:
        return UsageRows.empty()
    lo, hi = int(start.timestamp()), int(end.timestamp())
    d0, d1 = _utc(lo // 86_400 * 86_400), _utc(-(-hi // 86_400) * 86_400)
    ids = list(series_ids)
    parts = [
        _packed_days(conn, ids[i : i + _SERIES_PER_QUERY], d0, d1)
        for i in range(0, len(ids), _SERIES_PER_QUERY)
    ]
    sid = np.concatenate([p[0] for p in parts])
    if not sid.size:
        return UsageRows.empty()
    day_s = np.concatenate([p[1] for p in parts])
    q = np.concatenate([p[2] for p in parts])
    e = np.concatenate([p[3] for p in parts])
    rc = np.concatenate([p[4] for p in parts])
    starts = (day_s[:, None] + np.arange(0, 86_400, 900, dtype=np.int64)).reshape(-1)
    keep = (starts >= lo) & (starts < hi) & ((q != 0) | (rc != 0) | (e != 0))
    return UsageRows(
        series=np.repeat(sid, _SLOTS)[keep],
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
        # The candidates first, by (customer, period): a ``min(finalized_at)`` over the same
        # filter is planned as a walk of the finalized_at index in order, which passes every
        # final invoice of the database when the customers have none (once per chunk).
        candidates = conn.execute(  # one probe per customer (OFFSET 0: see CHUNK_DRAFTS)
            "SELECT i.invoice_id, i.finalized_at FROM unnest(%s::bigint[]) AS c (customer_id)"
            " CROSS JOIN LATERAL (SELECT invoice_id, finalized_at FROM invoices"
            " WHERE customer_id = c.customer_id AND period < %s AND status = 'final'"
            " AND period_end > %s OFFSET 0) i",
            (sorted(customer_ids), before_period, now - horizon),
        ).fetchall()
        if not candidates:
            return []
        rows = conn.execute(
            "SELECT i.invoice_id, i.customer_id, i.number, i.period, i.period_start,"
            " i.period_end, i.finalized_at FROM invoices i"
            " WHERE i.invoice_id = ANY(%s) AND EXISTS ("
            "   SELECT 1 FROM subscriptions s JOIN usage_15m u ON u.series_id = s.series_id"
            "   WHERE s.customer_id = i.customer_id AND s.valid_from < i.period_end"
            "   AND coalesce(s.valid_to, 'infinity') > i.period_start"
            "   AND u.bucket >= greatest(s.valid_from, i.period_start)"
            "   AND u.bucket < least(coalesce(s.valid_to, 'infinity'), i.period_end)"
            "   AND u.updated_at > i.finalized_at AND u.updated_at > %s)"
            " ORDER BY i.customer_id, i.period",
            ([int(r[0]) for r in candidates], min(r[1] for r in candidates)),
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
        ids = sorted(customer_ids)
        floor = conn.execute(
            sql.SQL("SELECT min(i.drafted_at) FROM {}").format(CHUNK_DRAFTS), (ids, period)
        ).fetchone()
        if floor is None or floor[0] is None:
            return []
        rows = conn.execute(
            sql.SQL(
                "SELECT i.customer_id FROM {} WHERE EXISTS ("
                "   SELECT 1 FROM subscriptions s JOIN usage_15m u ON u.series_id = s.series_id"
                "   WHERE s.customer_id = i.customer_id AND s.valid_from < i.period_end"
                "   AND coalesce(s.valid_to, 'infinity') > i.period_start"
                "   AND u.bucket >= i.period_start AND u.bucket < i.period_end"
                "   AND u.updated_at > i.drafted_at AND u.updated_at > %s)"
                " ORDER BY i.customer_id"
            ).format(CHUNK_DRAFTS),
            (ids, period, floor[0]),
        ).fetchall()
    return [int(r[0]) for r in rows]
