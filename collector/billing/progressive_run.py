"""The progressive billing check: rate the open period so far and issue the interim invoices
that are due (``collector.billing.interim``). Orchestrates storage calls.

Customers are taken in chunks (by id), each chunk in its own transaction: its subscriptions
are row-locked, what interim invoices billed already is read, the usage so far is rated, and
every interim invoice due is numbered and stored. Re-running issues nothing new until usage
crosses a higher threshold. Customers whose invoice of the period is final are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from collector.billing.close import PlanCache, plan_chunk
from collector.billing.customer_chunks import in_customer_chunks
from collector.billing.interim import InterimContext, interim_for, usage_amount
from collector.billing.periods import PeriodKey
from collector.billing.rating_pass import rate_segments
from collector.rating import LineItem
from collector.rating.progressive import progressive_charge
from collector.storage import billing_interim_store as interim_store
from collector.storage import billing_usage_store as usage_store

Conn = psycopg.Connection[Any]


def check_chunk(
    conn: Conn, key: PeriodKey, customer_ids: Sequence[int], now: datetime, plans: PlanCache
) -> list[interim_store.InterimInvoice]:
    """Issue the interim invoices due for these customers, in the caller's transaction."""
    period = str(key)
    chunk = plan_chunk(conn, key, customer_ids)
    if not chunk.segments or chunk.lo is None or chunk.hi is None:
        return []
    all_plans = plans.load(conn, sorted({s.plan_version_id for s in chunk.segments}))
    segments = [s for s in chunk.segments if progressive_charge(all_plans[s.plan_version_id])]
    if not segments:
        return []
    billed = interim_store.billed_in_advance(
        conn, [period], [s.subscription_id for s in segments], lock=True
    )
    series = tuple(sorted({s.series_id for s in segments}))
    info = usage_store.series_info(conn, series)
    hi = min(chunk.hi, now)
    if hi <= chunk.lo:
        return []
    usage = usage_store.load_usage_rows(conn, series, chunk.lo, hi)
    # segments keep their global index: rate_segments sizes its arrays by it
    rated = rate_segments(
        chunk.segments,
        [chunk.periods[s.customer_id] for s in chunk.segments],
        usage,
        all_plans,
        {k: v[3] for k, v in info.items()},
    )
    lines: dict[int, list[LineItem]] = {}
    for seg in segments:
        lines.setdefault(seg.subscription_id, []).extend(rated.lines.get(seg.index, []))
    issued: list[interim_store.InterimInvoice] = []
    done: set[int] = set()
    for seg in segments:
        if seg.subscription_id in done:
            continue
        done.add(seg.subscription_id)
        customer = chunk.customers[seg.customer_id]
        bp = chunk.periods[seg.customer_id]
        s = customer.spec
        ctx = InterimContext(
            customer_id=seg.customer_id,
            subscription_id=seg.subscription_id,
            period=period,
            period_start=bp.start,
            period_end=bp.end,
            currency=s.currency,
            tax_rate=s.tax_rate,
            issuer=s.issuer,
            prefix=s.invoice_prefix,
            label="/".join(info[seg.series_id][:2]),
        )
        due = interim_for(
            ctx,
            all_plans[seg.plan_version_id],
            usage_amount(lines[seg.subscription_id]),
            billed.get((seg.subscription_id, period), Decimal(0)),
        )
        if due is not None:
            issued.append(interim_store.issue(conn, due, now, s.time_zone))
    return issued


def run_progressive_check(
    conn: Conn, key: PeriodKey, now: datetime, *, chunk_size: int = 500
) -> list[interim_store.InterimInvoice]:
    """Check every customer for ``key`` at ``now``; each chunk commits on its own."""
    plans = PlanCache()
    return in_customer_chunks(conn, chunk_size, lambda ids: check_chunk(conn, key, ids, now, plans))
