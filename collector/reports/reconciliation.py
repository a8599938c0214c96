"""Reconciliation: every final invoice of a period against the usage behind it, re-rated now.

For each final invoice the period's subscriptions are cut to the customer's period and the
current 15-minute usage is rated again by the billing core (same plans, same ratchet history
from earlier final invoices). ``billed`` is the exact sum of the invoice's usage, demand and
fixed lines; ``corrections`` what later invoices adjusted for it; ``rerated`` what the usage
known today is worth. ``unexplained`` = rerated − billed − corrections: zero when the invoice
and its corrections account for all the usage; otherwise late usage not yet corrected (or a
plan/subscription changed after the fact), which an auditor should see.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from collector.billing.interim import advance_by_segment
from collector.billing.periods import PeriodKey, period_for
from collector.billing.pricing import parse_plan_document
from collector.billing.ratchets import previous_periods, ratchet_months
from collector.billing.rating_pass import rate_segments
from collector.billing.segments import build_segments
from collector.reports.table import Table
from collector.storage import billing_interim_store as interim_store
from collector.storage import billing_peak_store as peak_store
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store
from collector.storage import report_queries

__all__ = ["reconcile_period"]

Conn = psycopg.Connection[Any]
COLUMNS = (
    "invoice_id", "number", "customer_id", "period", "currency", "usage_quantity",
    "estimated_quantity", "billed", "corrections", "rerated", "unexplained", "status",
)


def reconcile_period(conn: Conn, period: str) -> Table:
    """One row per final invoice of ``period`` (``YYYY-MM``)."""
    key = PeriodKey.parse(period)
    finals = report_queries.final_invoices(conn, period)
    if not finals:
        return Table("reconciliation", COLUMNS, ())
    ids = [f[1] for f in finals]
    customers = {c.customer_id: c for c in store.customers_by_ids(conn, ids)}
    periods = {
        cid: period_for(key, c.spec.time_zone, c.spec.anchor_day) for cid, c in customers.items()
    }
    lo = min(p.start for p in periods.values())
    hi = max(p.end for p in periods.values())
    segments = build_segments(periods, store.subscriptions_overlapping(conn, ids, lo, hi))
    series = sorted({s.series_id for s in segments})
    usage = usage_store.load_usage_rows(conn, series, lo, hi)
    plans = {
        v.plan_version_id: parse_plan_document(v.document)
        for v in store.plan_versions(conn, sorted({s.plan_version_id for s in segments}))
    }
    units = {k: v[3] for k, v in usage_store.series_info(conn, series).items()}
    months = ratchet_months(plans.values())
    rated = rate_segments(
        segments,
        [periods[s.customer_id] for s in segments],
        usage,
        plans,
        units,
        keys={s.index: key for s in segments},
        history=peak_store.peak_history(conn, ids, previous_periods(key, months)),
        # final invoices deducted their interim invoices: so does the re-rating
        billed_in_advance=advance_by_segment(
            segments,
            lambda _seg: period,
            interim_store.billed_in_advance(conn, [period], [s.subscription_id for s in segments]),
        ),
    )
    rerated: dict[int, Decimal] = dict.fromkeys(ids, Decimal(0))
    qty: dict[int, Decimal] = dict.fromkeys(ids, Decimal(0))
    est: dict[int, Decimal] = dict.fromkeys(ids, Decimal(0))
    for s in segments:
        rerated[s.customer_id] += sum(
            (i.amount_unrounded for i in rated.lines.get(s.index, [])), Decimal(0)
        )
        qty[s.customer_id] += rated.facts[s.index].quantity
        est[s.customer_id] += rated.facts[s.index].estimated
    inv_ids = [f[0] for f in finals]
    all_billed = usage_store.billed_by_subscription(conn, inv_ids, [])
    with_corrections: dict[int, Decimal] = {}
    for (inv, _sub), amount in all_billed.items():
        with_corrections[inv] = with_corrections.get(inv, Decimal(0)) + amount
    rows = []
    for inv, cid, number, billed in finals:
        corrections = with_corrections.get(inv, Decimal(0)) - billed
        diff = rerated[cid] - billed - corrections
        rows.append(
            (
                inv, number, cid, period, customers[cid].spec.currency, qty[cid], est[cid],
                billed, corrections, rerated[cid], diff,
                "ok" if diff == 0 else "usage not yet billed" if diff > 0 else "over-billed",
            )
        )
    return Table("reconciliation", COLUMNS, tuple(rows))
