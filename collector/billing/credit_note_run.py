"""Issuing credit notes for late data (orchestrates storage calls): after a period's drafts are
finalized, every earlier final invoice whose re-rated period now bills less than was billed
(invoice lines + adjustments − earlier credit notes) gets a credit note for the difference.
Runs inside the finalize run's chunk transaction, so it is repeated safely after a crash."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from collector.billing.corrections import compute_corrections
from collector.billing.credit_notes import CreditedInvoice, credit_note_drafts
from collector.billing.periods import PeriodKey
from collector.rating import Plan
from collector.storage import billing_credit_note_store as notes
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store

Conn = psycopg.Connection[Any]


def issue_credit_notes(
    conn: Conn,
    key: PeriodKey,
    customer_ids: Sequence[int],
    *,
    now: datetime,
    horizon: timedelta,
    plans_for: Callable[[Sequence[int]], Mapping[int, Plan]],
) -> list[tuple[int, str]]:
    """Credit notes for final invoices of periods before ``key`` of these customers."""
    if not usage_store.invoices_with_late_usage(conn, customer_ids, str(key), now, horizon):
        return []  # the usual case: no late data, no customer to load
    customers = {c.customer_id: c for c in store.customers_by_ids(conn, customer_ids)}
    corrections = compute_corrections(
        conn, customers, key, now=now, horizon=horizon, exclude_invoice_ids=(), plans_for=plans_for
    )
    wanted = sorted(
        {c.corrects_invoice_id for cs in corrections.values() for c in cs if c.amount_unrounded < 0}
    )
    if not wanted:
        return []
    credited = {}
    for invoice_id in wanted:
        inv = invoices.get_invoice(conn, invoice_id, with_lines=False)
        assert inv.number is not None
        credited[invoice_id] = CreditedInvoice(
            inv.invoice_id, inv.number, inv.period, inv.issuer, inv.currency, inv.tax_rate
        )
    return notes.issue(conn, credit_note_drafts(corrections, customers, credited), now)
