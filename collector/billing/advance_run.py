"""The pay-in-advance run: at (or after) the start of a period, issue each customer's advance
invoice of its ``pay_in_advance`` recurring fees (``collector.billing.advance``).
Orchestrates storage calls; customers in chunks, each chunk in its own transaction; a
customer gets at most one advance invoice per period, so the run is safe to repeat.
Subscriptions known at run time are billed. Limitation: a subscription
added to the customer after its advance invoice of the period was issued has its advance fee
on neither invoice of that period (the final invoice always leaves such fees off).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from collector.billing.advance import (
    AdvanceContext,
    AdvanceLine,
    advance_invoice,
    advance_lines,
)
from collector.billing.close import PlanCache, plan_chunk
from collector.billing.customer_chunks import in_customer_chunks
from collector.billing.periods import PeriodKey
from collector.billing.rating_pass import advance_charge_ids, rate_segments
from collector.storage import billing_advance_store as advance_store
from collector.storage import billing_usage_store as usage_store

Conn = psycopg.Connection[Any]


def _chunk(
    conn: Conn, key: PeriodKey, ids: list[int], now: datetime, plans: PlanCache
) -> list[advance_store.AdvanceInvoice]:
    period = str(key)
    chunk = plan_chunk(conn, key, ids)
    if not chunk.segments:
        return []
    all_plans = plans.load(conn, sorted({s.plan_version_id for s in chunk.segments}))
    if not any(advance_charge_ids(p) for p in all_plans.values()):
        return []
    done = advance_store.issued_customers(conn, period, list(chunk.customers))
    info = usage_store.series_info(conn, tuple(sorted({s.series_id for s in chunk.segments})))
    rated = rate_segments(
        chunk.segments,
        [chunk.periods[s.customer_id] for s in chunk.segments],
        usage_store.UsageRows.empty(),
        all_plans,
        {k: v[3] for k, v in info.items()},
        in_advance="only",
    )
    per_customer: dict[int, list[AdvanceLine]] = {}
    for seg in chunk.segments:
        label = "/".join(info[seg.series_id][:2])
        per_customer.setdefault(seg.customer_id, []).extend(
            advance_lines(seg.subscription_id, label, rated.lines.get(seg.index, []))
        )
    issued = []
    for cid, lines in sorted(per_customer.items()):
        if cid in done:
            continue
        c = chunk.customers[cid].spec
        bp = chunk.periods[cid]
        ctx = AdvanceContext(
            cid, period, bp.start, bp.end, c.currency, c.tax_rate, c.issuer, c.invoice_prefix
        )
        due = advance_invoice(ctx, lines)
        if due is not None:
            issued.append(advance_store.issue(conn, due, now, c.time_zone))
    return issued


def run_advance_billing(
    conn: Conn, key: PeriodKey, now: datetime, *, chunk_size: int = 500
) -> list[advance_store.AdvanceInvoice]:
    """Issue the advance invoices of ``key`` not issued yet; each chunk commits on its own."""
    plans = PlanCache()
    return in_customer_chunks(conn, chunk_size, lambda ids: _chunk(conn, key, ids, now, plans))
