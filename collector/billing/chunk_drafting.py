"""Drafting one chunk of customers: what it bills (``plan_chunk``), its drafts computed from
its usage (``compute_drafts``, reads only) and both in the caller's transaction
(``draft_chunk``). The period close (``close``) runs these chunk by chunk, in a pipeline
(``close_pipeline``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from collector.billing.corrections import compute_corrections
from collector.billing.drafting import draft_invoice
from collector.billing.interim import advance_by_segment
from collector.billing.model import Customer, DemandPeak, DraftInvoice
from collector.billing.periods import BillingPeriod, PeriodKey, period_for
from collector.billing.pricing import parse_plan_document
from collector.billing.ratchets import previous_periods, ratchet_months
from collector.billing.rating_pass import rate_segments
from collector.billing.segments import Segment, build_segments
from collector.errors import ValidationFailed
from collector.rating import Plan
from collector.storage import billing_interim_store as interim_store
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_peak_store as peak_store
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class CloseConfig:
    """``grace``: how long after a period ends drafts wait for late readings before they may be
    finalized. ``correction_horizon``: how long after a finalized period ends late data still
    produces adjustments. ``chunk_size``: customers per transaction. ``processes``: rating
    processes of a pipelined draft run (0: rate in threads of the calling process; see
    ``close_pipeline``)."""

    chunk_size: int = 1000
    pipeline: bool = True  # drafts: rate, load the next chunk and store the last at once
    processes: int = 0
    grace: timedelta = timedelta(days=3)
    correction_horizon: timedelta = timedelta(days=92)

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= 10_000:
            raise ValidationFailed("chunk_size must be 1..10000")
        if not 0 <= self.processes <= 32:
            raise ValidationFailed("processes must be 0..32")
        if self.grace < timedelta(0) or self.correction_horizon < timedelta(0):
            raise ValidationFailed("grace and correction_horizon must not be negative")


class PlanCache:
    """Parsed plan versions (immutable, so caching them is always correct)."""

    def __init__(self) -> None:
        self._plans: dict[int, Plan] = {}

    def load(self, conn: Conn, ids: Sequence[int]) -> dict[int, Plan]:
        missing = [i for i in ids if i not in self._plans]
        for pv in store.plan_versions(conn, missing):
            self._plans[pv.plan_version_id] = parse_plan_document(pv.document)
        return {i: self._plans[i] for i in ids}


def _label(info: tuple[str, str, str, str]) -> str:
    return f"{info[0]}/{info[1]}"


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """What a chunk bills: its non-final customers, their periods, segments and usage range."""

    customers: dict[int, Customer]
    periods: dict[int, BillingPeriod]
    segments: list[Segment]
    series: tuple[int, ...]
    lo: datetime | None
    hi: datetime | None


def plan_chunk(conn: Conn, key: PeriodKey, customer_ids: Sequence[int]) -> ChunkPlan:
    finals = invoices.final_customer_ids(conn, str(key), customer_ids)
    customers = {
        c.customer_id: c
        for c in store.customers_by_ids(conn, customer_ids)
        if c.customer_id not in finals
    }
    if not customers:
        return ChunkPlan({}, {}, [], (), None, None)
    by_cycle: dict[tuple[str, int], BillingPeriod] = {}  # few zones and anchors, many customers
    periods: dict[int, BillingPeriod] = {}
    for cid, c in customers.items():
        cycle = (c.spec.time_zone, c.spec.anchor_day)
        p = by_cycle.get(cycle)
        if p is None:
            p = by_cycle[cycle] = period_for(key, *cycle)
        periods[cid] = p
    lo = min(p.start for p in periods.values())
    hi = max(p.end for p in periods.values())
    segments = build_segments(
        periods, store.subscriptions_overlapping(conn, list(customers), lo, hi)
    )
    return ChunkPlan(
        customers, periods, segments, tuple(sorted({s.series_id for s in segments})), lo, hi
    )


def draft_chunk(
    conn: Conn,
    key: PeriodKey,
    customer_ids: Sequence[int],
    *,
    now: datetime,
    config: CloseConfig,
    plans: PlanCache,
    run_id: int | None = None,
) -> tuple[int, int]:
    """(Re)draft the invoices of these customers for ``key`` in the caller's transaction;
    customers whose invoice is final are left alone. Returns (invoices, lines) written."""
    plan = plan_chunk(conn, key, customer_ids)
    if not plan.customers or plan.lo is None or plan.hi is None:
        return 0, 0
    usage = usage_store.load_usage_rows(conn, plan.series, plan.lo, plan.hi)
    drafts = compute_drafts(conn, key, plan, usage, now=now, config=config, plans=plans)
    written = invoices.store_drafts(
        conn, str(key), drafts, list(plan.customers), run_id=run_id, now=now
    )
    return len(drafts), written


def compute_drafts(
    conn: Conn,
    key: PeriodKey,
    plan: ChunkPlan,
    usage: usage_store.UsageRows,
    *,
    now: datetime,
    config: CloseConfig,
    plans: PlanCache,
) -> list[DraftInvoice]:
    """The drafts of a planned chunk from its usage (reads only: plan versions, ratchet
    history, interim invoices, corrections; nothing is written)."""
    period_text = str(key)
    customers, periods, segments = plan.customers, plan.periods, plan.segments
    if not customers:
        return []
    info = usage_store.series_info(conn, plan.series)
    labels = {sid: _label(v) for sid, v in info.items()}
    cycles = [periods[s.customer_id] for s in segments]
    chunk_plans = plans.load(conn, sorted({s.plan_version_id for s in segments}))
    months = ratchet_months(chunk_plans.values())
    rated = rate_segments(
        segments,
        cycles,
        usage,
        chunk_plans,
        {k: v[3] for k, v in info.items()},
        keys={s.index: key for s in segments},
        history=peak_store.peak_history(conn, list(customers), previous_periods(key, months)),
        billed_in_advance=advance_by_segment(
            segments,
            lambda _seg: period_text,
            interim_store.billed_in_advance(
                conn, [period_text], [s.subscription_id for s in segments]
            ),
        ),
    )
    drafts_now = invoices.draft_invoice_ids(conn, period_text, list(customers))
    corrections = compute_corrections(
        conn,
        customers,
        key,
        now=now,
        horizon=config.correction_horizon,
        exclude_invoice_ids=drafts_now,
        plans_for=lambda ids: plans.load(conn, ids),
        labels=labels,
    )
    by_customer: dict[int, list[Any]] = {cid: [] for cid in customers}
    peaks: dict[int, list[DemandPeak]] = {cid: [] for cid in customers}
    for seg in segments:
        by_customer[seg.customer_id].append(
            (seg, rated.facts[seg.index], rated.lines.get(seg.index, []))
        )
        peaks[seg.customer_id].extend(
            DemandPeak(seg.subscription_id, seg.series_id, charge_id, peak)
            for charge_id, peak in rated.peaks.get(seg.index, {}).items()
        )
    drafts: list[DraftInvoice] = []
    for cid, customer in customers.items():
        d = draft_invoice(
            customer,
            periods[cid],
            by_customer[cid],
            corrections.get(cid, []),
            labels,
            peaks=peaks[cid],
        )
        if d is not None:
            drafts.append(d)
    return drafts
