"""Interval usage for billing: the usage engine's packed ``usage_15m_daily`` (helper D) read in
bulk for many series at once (packed days concatenated server-side, decoded by numpy), plus
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
_SERIES_PER_QUERY: Final = 500  # ≤ 500 × 40 days × 1,920 bytes ≈ 38 MB per result row

# One row per batch of series: the packed days concatenated server-side (string_agg, one
# order), so the client receives four byte strings instead of one message per series and day.
# bool_and guards the fixed sizes that the decoding relies on (CHECK constraints of 0010).
_PACKED_SQL: Final = (
    "SELECT count(*), coalesce(bool_and(length(quantity) = 768 AND length(estimated) = 768"
    " AND length(reading_count) = 384), true),"
    " coalesce(string_agg(int8send(series_id) || int8send(extract(epoch FROM day)::bigint),"
    " ''::bytea ORDER BY series_id, day), ''::bytea),"
    " coalesce(string_agg(quantity, ''::bytea ORDER BY series_id, day), ''::bytea),"
    " coalesce(string_agg(estimated, ''::bytea ORDER BY series_id, day), ''::bytea),"
    " coalesce(string_agg(reading_count, ''::bytea ORDER BY series_id, day), ''::bytea)"
    " FROM usage_15m_daily WHERE series_id = ANY(%s) AND day >= %s AND day < %s"
)


def _packed_days(
    conn: Conn, series_ids: Sequence[int], d0: datetime, d1: datetime
) -> tuple[I64, I64, F64, F64, I64]:
    """(series, day start in Unix s, quantity, estimated, readings) of every packed day of
    ``series_ids`` in ``[d0, d1)``: one row of byte strings per query, decoded by numpy."""
    with translated("load interval usage"), conn.cursor(binary=True) as cur:
        row = cur.execute(_PACKED_SQL, (list(series_ids), d0, d1)).fetchone()
    assert row is not None
    n, sized, keys, q, e, rc = row
    n = int(n)
    sizes = (len(keys), len(q), len(e), len(rc))
    if not sized or sizes != (16 * n, 8 * _SLOTS * n, 8 * _SLOTS * n, 4 * _SLOTS * n):
        raise StorageError("unexpected packed layout of usage_15m_daily (resized column)")
    k = np.frombuffer(keys, dtype=">i8").reshape(n, 2).astype(np.int64)
    return (
        k[:, 0],
        k[:, 1],
        np.frombuffer(q, dtype=">f8").astype(np.float64),  # native byte order
        np.frombuffer(e, dtype=">f8").astype(np.float64),
        np.frombuffer(rc, dtype=">i4").astype(np.int64),
    )


def load_usage_rows(
    conn: Conn, series_ids: Sequence[int], start: datetime, end: datetime
) -> UsageRows:
    """All 15-minute usage of ``series_ids`` with buckets in ``[start, end)``.

    Reads the usage engine's packed ``usage_15m_daily`` (helper D keeps it in step with
    ``usage_15m`` in the same transaction; 96 quarter hours per series and UTC day, so the
    server reads 96x fewer rows than from ``usage_15m``). The server concatenates the packed
    days of up to 500 series into one result row of four byte strings, which numpy decodes
    and flattens to one row per interval that has usage, an estimate or readings: no Python
    work and no protocol message per row or per interval.
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
