"""Period close: draft one invoice per customer, refresh drafts, finalize with gapless numbers.

Customers are processed in chunks (ordered by id), each chunk in ONE transaction together with
the run's progress row, so a killed close resumes after the last committed chunk and re-running
never duplicates an invoice. Per chunk everything is set-based: one query for the customers,
one for their subscriptions, one query per 500 meters for their interval usage (the usage
engine's packed ``usage_15m_daily``, concatenated server-side into one row of byte strings and
decoded by numpy; the next chunk's usage is prefetched on a second connection meanwhile), one
query of the demand peaks of earlier final invoices (ratchets), one rating-engine call per (plan
version, unit), one COPY of the invoices into a staging table and one ``INSERT … SELECT … ON
CONFLICT`` from it, and one COPY each of lines and of the new demand peaks. Finalizing numbers a
chunk with one UPDATE.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import psycopg_pool

from collector.billing.corrections import compute_corrections
from collector.billing.credit_note_run import issue_credit_notes
from collector.billing.drafting import draft_invoice
from collector.billing.finalize_guard import ForceReason
from collector.billing.finalizing import check_period
from collector.billing.interim import advance_by_segment
from collector.billing.model import Customer, DemandPeak, DraftInvoice
from collector.billing.periods import BillingPeriod, PeriodKey, period_for
from collector.billing.pricing import parse_plan_document
from collector.billing.ratchets import previous_periods, ratchet_months
from collector.billing.rating_pass import rate_segments
from collector.billing.segments import Segment, build_segments
from collector.billing.wallet_on_finalize import apply_on_finalize
from collector.errors import CollectorError, ValidationFailed
from collector.rating import Plan
from collector.storage import billing_interim_store as interim_store
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_peak_store as peak_store
from collector.storage import billing_run_store as runs
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store

Conn = psycopg.Connection[Any]
Pool = psycopg_pool.ConnectionPool[Any]
Progress = Callable[[runs.BillingRun], None]


@dataclass(frozen=True, slots=True)
class CloseConfig:
    """``grace``: how long after a period ends drafts wait for late readings before they may be
    finalized. ``correction_horizon``: how long after a finalized period ends late data still
    produces adjustments. ``chunk_size``: customers per transaction."""

    chunk_size: int = 1000
    prefetch: bool = True  # load the next chunk's usage on a second connection meanwhile
    grace: timedelta = timedelta(days=3)
    correction_horizon: timedelta = timedelta(days=92)

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= 10_000:
            raise ValidationFailed("chunk_size must be 1..10000")
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


@dataclass(frozen=True, slots=True)
class Prefetched:
    """Usage loaded ahead (on another connection) for the chunk after ``after``."""

    series: tuple[int, ...]
    lo: datetime | None
    hi: datetime | None
    rows: usage_store.UsageRows


Work = Callable[[Conn, list[int], int, Prefetched | None], tuple[int, int]]


def prefetch_usage(pool: Pool, key: PeriodKey, after: int, chunk_size: int) -> Prefetched | None:
    """Load the next chunk's usage while the current chunk is rated and written."""
    with pool.connection() as conn:
        ids = store.customer_ids(conn, after=after, limit=chunk_size)
        if not ids:
            return None
        plan = plan_chunk(conn, key, ids)
        if plan.lo is None or plan.hi is None:
            return None
        rows = usage_store.load_usage_rows(conn, plan.series, plan.lo, plan.hi)
        conn.rollback()
    return Prefetched(plan.series, plan.lo, plan.hi, rows)


def draft_chunk(
    conn: Conn,
    key: PeriodKey,
    customer_ids: Sequence[int],
    *,
    now: datetime,
    config: CloseConfig,
    plans: PlanCache,
    run_id: int | None = None,
    prefetched: Prefetched | None = None,
) -> tuple[int, int]:
    """(Re)draft the invoices of these customers for ``key`` in the caller's transaction;
    customers whose invoice is final are left alone. Returns (invoices, lines) written.

    ``prefetched`` usage is used only if it covers exactly this chunk's meters and range
    (otherwise it is loaded again here)."""
    period_text = str(key)
    plan = plan_chunk(conn, key, customer_ids)
    customers, periods, segments = plan.customers, plan.periods, plan.segments
    if not customers or plan.lo is None or plan.hi is None:
        return 0, 0
    info = usage_store.series_info(conn, plan.series)
    labels = {sid: _label(v) for sid, v in info.items()}
    if prefetched is not None and (prefetched.series, prefetched.lo, prefetched.hi) == (
        plan.series,
        plan.lo,
        plan.hi,
    ):
        usage = prefetched.rows
    else:
        usage = usage_store.load_usage_rows(conn, plan.series, plan.lo, plan.hi)
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
    written = invoices.store_drafts(
        conn, period_text, drafts, list(customers), run_id=run_id, now=now
    )
    return len(drafts), written


def _settled(ahead: Future[Prefetched | None] | None) -> Prefetched | None:
    """The prefetched usage, or None if there was none or it failed (the chunk loads it)."""
    if ahead is None:
        return None
    try:
        return ahead.result()
    except (CollectorError, psycopg.Error, psycopg_pool.PoolTimeout):
        return None


def _run_chunks(
    pool: Pool,
    key: PeriodKey,
    kind: str,
    *,
    now: datetime,
    config: CloseConfig,
    work: Work,
    progress: Progress | None,
) -> runs.BillingRun:
    with pool.connection() as conn, conn.transaction():
        total = store.count_customers(conn)
        run = runs.start_or_resume_run(conn, str(key), kind, total, now)
    ahead: Future[Prefetched | None] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="billing-prefetch") as pool_ahead:
        while True:
            # Wait for the prefetch before taking a connection: with a one-connection pool the
            # prefetch needs the connection this loop would otherwise hold.
            pre = _settled(ahead)
            ahead = None
            with pool.connection() as conn, conn.transaction():
                current = runs.lock_run(conn, run.run_id)
                if current.status == "done":
                    return current
                ids = store.customer_ids(
                    conn, after=current.last_customer_id, limit=config.chunk_size
                )
                if not ids:
                    break
                if config.prefetch:
                    ahead = pool_ahead.submit(prefetch_usage, pool, key, ids[-1], config.chunk_size)
                n_inv, n_lines = work(conn, ids, run.run_id, pre)
                runs.advance_run(
                    conn,
                    run.run_id,
                    last_customer_id=ids[-1],
                    customers=len(ids),
                    invoices=n_inv,
                    lines=n_lines,
                    now=now,
                )
            if progress is not None:
                with pool.connection() as conn:
                    progress(runs.get_run(conn, run.run_id))
        if ahead is not None:
            ahead.cancel()
    with pool.connection() as conn, conn.transaction():
        done = runs.finish_run(conn, run.run_id, now)
    if progress is not None:
        progress(done)
    return done


def begin_run(pool: Pool, key: PeriodKey, kind: str, now: datetime) -> runs.BillingRun:
    """The run a close/refresh/finalize of ``key`` will work on (started or resumed now); for a
    close that has completed already, that completed run."""
    with pool.connection() as conn, conn.transaction():
        if kind == "close":
            done = runs.completed_run(conn, str(key), "close")
            if done is not None:
                return done
        return runs.start_or_resume_run(conn, str(key), kind, store.count_customers(conn), now)


def close_period(
    pool: Pool,
    key: PeriodKey,
    now: datetime,
    config: CloseConfig | None = None,
    *,
    progress: Progress | None = None,
) -> runs.BillingRun:
    """Draft every customer's invoice for ``key``. Idempotent: once a close of the period has
    completed, closing again returns that run and changes nothing (use ``refresh_period`` to
    re-draft); a killed close resumes where its last committed chunk ended."""
    cfg = config or CloseConfig()
    with pool.connection() as conn:
        done = runs.completed_run(conn, str(key), "close")
    if done is not None:
        return done
    return _draft_run(pool, key, "close", now=now, cfg=cfg, progress=progress)


def refresh_period(
    pool: Pool,
    key: PeriodKey,
    now: datetime,
    config: CloseConfig | None = None,
    *,
    progress: Progress | None = None,
) -> runs.BillingRun:
    """Re-draft every non-final invoice of ``key`` from the current usage (late readings)."""
    return _draft_run(pool, key, "refresh", now=now, cfg=config or CloseConfig(), progress=progress)


def _draft_run(
    pool: Pool,
    key: PeriodKey,
    kind: str,
    *,
    now: datetime,
    cfg: CloseConfig,
    progress: Progress | None,
) -> runs.BillingRun:
    """Draft (or re-draft) every customer of ``key`` in chunks, as a run of ``kind``."""
    plans = PlanCache()
    return _run_chunks(
        pool,
        key,
        kind,
        now=now,
        config=cfg,
        work=lambda conn, ids, run_id, pre: draft_chunk(
            conn, key, ids, now=now, config=cfg, plans=plans, run_id=run_id, prefetched=pre
        ),
        progress=progress,
    )


def finalize_period(
    pool: Pool,
    key: PeriodKey,
    now: datetime,
    config: CloseConfig | None = None,
    *,
    forced: ForceReason | None = None,
    progress: Progress | None = None,
) -> runs.BillingRun:
    """Finalize the drafts of ``key`` once the period has ended plus the grace window.

    Refused with ``NotReady`` while the period or one of its drafts is inside that window,
    unless ``forced`` (the reason is then recorded on each invoice finalized early).
    Drafts that received usage after they were drafted are re-drafted first, in the same
    transaction, so a final invoice always reflects every reading known at finalization. Then
    earlier final invoices that late data lowered get their credit notes (``credit_note_run``).
    """
    cfg = config or CloseConfig()
    plans = PlanCache()
    with pool.connection() as conn:
        check_period(conn, key, now, grace=cfg.grace, forced=forced)
    ready_before = now - cfg.grace
    reason = None if forced is None else forced.text

    def work(conn: Conn, ids: list[int], run_id: int, pre: Prefetched | None) -> tuple[int, int]:
        stale = usage_store.stale_draft_customers(conn, str(key), ids)
        lines = 0
        if stale:
            lines = draft_chunk(conn, key, stale, now=now, config=cfg, plans=plans, run_id=run_id)[
                1
            ]
        del pre  # finalize re-drafts only stale customers; it does not need the usage ahead
        done = invoices.finalize_drafts(
            conn,
            now,
            period=str(key),
            customer_ids=ids,
            period_end_before=ready_before,
            forced_reason=reason,
        )
        apply_on_finalize(conn, [iid for iid, _ in done], now)  # auto_apply_wallet customers
        issue_credit_notes(
            conn,
            key,
            ids,
            now=now,
            horizon=cfg.correction_horizon,
            plans_for=lambda pv_ids: plans.load(conn, pv_ids),
        )
        return len(done), lines

    return _run_chunks(
        pool,
        key,
        "finalize",
        now=now,
        config=dataclasses.replace(cfg, prefetch=False),
        work=work,
        progress=progress,
    )
