"""Demand peaks of invoices (``invoice_demand_peaks``, 0023): written with each draft, read back
as the history that demand ratchets look at (final invoices only)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from collector.billing.model import DraftInvoice
from collector.storage.billing_chunk_sql import CHUNK_DRAFTS
from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]


def delete_draft_peaks(conn: Conn, period: str, customer_ids: Sequence[int]) -> None:
    """Forget the peaks of the drafts of ``customer_ids`` for ``period`` (about to be redrafted)."""
    with translated("delete draft peaks"):
        conn.execute(
            sql.SQL(
                "DELETE FROM invoice_demand_peaks WHERE invoice_id IN (SELECT i.invoice_id FROM {})"
            ).format(CHUNK_DRAFTS),
            (sorted(customer_ids), period),
        )


def write_peaks(
    conn: Conn, period: str, drafts: Sequence[DraftInvoice], invoice_ids: dict[int, int]
) -> None:
    """One COPY of the drafts' peaks (``invoice_ids``: customer id -> draft invoice id)."""
    with (
        translated("store demand peaks"),
        conn.cursor() as cur,
        cur.copy(
            "COPY invoice_demand_peaks (invoice_id, subscription_id, customer_id, series_id,"
            " period, charge_id, peak) FROM STDIN"
        ) as copy,
    ):
        for d in drafts:
            invoice_id = invoice_ids.get(d.customer_id)
            if invoice_id is None:
                continue
            for p in d.peaks:
                copy.write_row(
                    (
                        invoice_id,
                        p.subscription_id,
                        d.customer_id,
                        p.series_id,
                        period,
                        p.charge_id,
                        p.peak,
                    )
                )


def peak_history(
    conn: Conn, customer_ids: Sequence[int], periods: Sequence[str]
) -> dict[tuple[int, int, str], dict[str, Decimal]]:
    """Highest actual peak per (customer, meter, demand charge) and period, from the FINAL
    invoices of ``periods`` (drafts never count)."""
    if not customer_ids or not periods:
        return {}
    with translated("load demand peak history"):
        rows = conn.execute(
            "SELECT p.customer_id, p.series_id, p.charge_id, p.period, max(p.peak)"
            " FROM invoice_demand_peaks p JOIN invoices i USING (invoice_id)"
            " WHERE p.customer_id = ANY(%s) AND p.period = ANY(%s) AND i.status = 'final'"
            " GROUP BY 1, 2, 3, 4",
            (list(customer_ids), list(periods)),
        ).fetchall()
    out: dict[tuple[int, int, str], dict[str, Decimal]] = {}
    for cid, sid, charge, period, peak in rows:
        out.setdefault((int(cid), int(sid), str(charge)), {})[str(period)] = Decimal(peak)
    return out
