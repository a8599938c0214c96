"""Late data after finalize: re-rate the original service period with the same plan versions,
diff against everything billed for it so far, and owe the difference on the next invoice.

The diff is taken per (corrected invoice, subscription) on exact amounts; previous adjustments
that reference the invoice count as billed, so re-running a close never bills a delta twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from collector.billing.drafting import CorrectionLine
from collector.billing.interim import advance_by_segment
from collector.billing.model import Customer
from collector.billing.periods import BillingPeriod, PeriodKey, zone
from collector.billing.ratchets import previous_periods, ratchet_months
from collector.billing.rating_pass import rate_segments
from collector.billing.segments import Segment, build_segments
from collector.rating import Plan
from collector.storage import billing_interim_store as interim_store
from collector.storage import billing_peak_store as peak_store
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store

Conn = psycopg.Connection[Any]


def _period_of(inv: usage_store.LateInvoice, tz_name: str) -> BillingPeriod:
    tz = zone(tz_name)
    return BillingPeriod(
        key=PeriodKey.parse(inv.period),
        time_zone=tz_name,
        first_day=inv.period_start.astimezone(tz).date(),
        end_day=inv.period_end.astimezone(tz).date(),
        start=inv.period_start,
        end=inv.period_end,
    )


def compute_corrections(
    conn: Conn,
    customers: Mapping[int, Customer],
    key: PeriodKey,
    *,
    now: datetime,
    horizon: timedelta,
    exclude_invoice_ids: Sequence[int],
    plans_for: Callable[[Sequence[int]], Mapping[int, Plan]],
    labels: Mapping[int, str] | None = None,
) -> dict[int, list[CorrectionLine]]:
    """Correction lines per customer for final invoices of periods before ``key``."""
    late = usage_store.invoices_with_late_usage(conn, list(customers), str(key), now, horizon)
    if not late:
        return {}
    segments: list[Segment] = []
    owner: list[usage_store.LateInvoice] = []
    cycles: list[BillingPeriod] = []
    for inv in late:
        period = _period_of(inv, customers[inv.customer_id].spec.time_zone)
        subs = store.subscriptions_overlapping(
            conn, [inv.customer_id], inv.period_start, inv.period_end
        )
        for seg in build_segments({inv.customer_id: period}, subs):
            segments.append(dataclasses.replace(seg, index=len(segments)))
            owner.append(inv)
            cycles.append(period)
    series = sorted({s.series_id for s in segments})
    info = usage_store.series_info(conn, series)
    usage = usage_store.load_usage_rows(
        conn, series, min(i.period_start for i in late), max(i.period_end for i in late)
    )
    plans = plans_for(sorted({s.plan_version_id for s in segments}))
    # ratchets see the history the original invoice saw (periods before the corrected one)
    months = ratchet_months(plans.values())
    keys = {s.index: PeriodKey.parse(owner[s.index].period) for s in segments}
    wanted = sorted({p for k in set(keys.values()) for p in previous_periods(k, months)})
    rated = rate_segments(
        segments,
        cycles,
        usage,
        plans,
        {k: v[3] for k, v in info.items()},
        keys=keys,
        history=peak_store.peak_history(conn, list(customers), wanted),
        # the original invoice deducted its interim invoices: so does the re-rating
        billed_in_advance=advance_by_segment(
            segments,
            lambda seg: owner[seg.index].period,
            interim_store.billed_in_advance(
                conn, [i.period for i in late], [s.subscription_id for s in segments]
            ),
        ),
    )
    new: dict[tuple[int, int], Decimal] = {}
    versions: dict[tuple[int, int], set[int]] = {}
    series_of: dict[int, int] = {}
    for seg in segments:
        k = (owner[seg.index].invoice_id, seg.subscription_id)
        amount = sum((li.amount_unrounded for li in rated.lines.get(seg.index, [])), Decimal(0))
        new[k] = new.get(k, Decimal(0)) + amount
        versions.setdefault(k, set()).add(seg.plan_version_id)
        series_of[seg.subscription_id] = seg.series_id
    billed = usage_store.billed_by_subscription(
        conn, [i.invoice_id for i in late], exclude_invoice_ids
    )
    by_id = {i.invoice_id: i for i in late}
    out: dict[int, list[CorrectionLine]] = {}
    for k in sorted(set(new) | {b for b in billed if b[0] in by_id}):
        diff = new.get(k, Decimal(0)) - Decimal(billed.get(k, 0))
        if diff == 0 or k[1] not in series_of:
            continue
        inv = by_id[k[0]]
        sid = series_of[k[1]]
        label = (labels or {}).get(sid) or _label(info.get(sid), sid)
        out.setdefault(inv.customer_id, []).append(
            CorrectionLine(
                subscription_id=k[1],
                series_id=sid,
                corrects_invoice_id=inv.invoice_id,
                corrects_invoice_number=inv.number,
                corrected_period=inv.period,
                amount_unrounded=diff,
                plan_version_ids=tuple(sorted(versions.get(k, set()))),
                label=label,
            )
        )
    return out


def _label(info: tuple[str, str, str, str] | None, series_id: int) -> str:
    if info is None:
        return f"series {series_id}"
    return f"{info[0]}/{info[1]}"
