"""Period close: draft one invoice per customer, refresh drafts, finalize with gapless numbers.

Customers are processed in chunks (ordered by id), each chunk in ONE transaction together with
the run's progress row, so a killed close resumes after the last committed chunk and re-running
never duplicates an invoice. Per chunk everything is set-based: one query for the customers,
one for their subscriptions, one binary COPY per 500 meters of their interval usage (the usage
engine's packed ``usage_15m_daily``, decoded by numpy in one go), one query of the demand peaks
of earlier final invoices (ratchets), one rating-engine call per (plan version, unit), one COPY
of the invoices into a staging table and one ``INSERT … SELECT … ON CONFLICT`` from it, and one
COPY each of lines and of the new demand peaks. Drafting is a pipeline (``_pipelined``): the
next chunk is read and the previous one stored on other connections while a chunk is rated.
Finalizing numbers a chunk with one UPDATE.
"""

from __future__ import annotations

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
from collector.errors import ValidationFailed
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
    pipeline: bool = True  # drafts: rate, load the next chunk and store the last at once
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
class ChunkResult:
    """The run after one chunk's transaction; ``stored`` False if nothing was written because
    the run was done or moved on meanwhile (another process works on it too)."""

    run: runs.BillingRun
    stored: bool


Work = Callable[[Conn, list[int], int], tuple[int, int]]


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
    while True:
        with pool.connection() as conn, conn.transaction():
            current = runs.lock_run(conn, run.run_id)
            if current.status == "done":
                return current
            ids = store.customer_ids(conn, after=current.last_customer_id, limit=config.chunk_size)
            if not ids:
                break
            n_inv, n_lines = work(conn, ids, run.run_id)
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
    """Draft (or re-draft) every customer of ``key`` in chunks, as a run of ``kind``: pipelined
    (``_pipelined``) unless ``cfg.pipeline`` is off; the chunk-by-chunk loop finishes a run that
    another process works on too."""
    plans = PlanCache()
    if cfg.pipeline:
        done = _pipelined(pool, key, kind, now=now, cfg=cfg, plans=plans, progress=progress)
        if done is not None:
            return done
    return _run_chunks(
        pool,
        key,
        kind,
        now=now,
        config=cfg,
        work=lambda conn, ids, run_id: draft_chunk(
            conn, key, ids, now=now, config=cfg, plans=plans, run_id=run_id
        ),
        progress=progress,
    )


@dataclass(frozen=True, slots=True)
class _Planned:
    ids: list[int]
    plan: ChunkPlan


def _plan_and_load(
    pool: Pool, key: PeriodKey, after: int, size: int
) -> tuple[_Planned, usage_store.UsageRows] | None:
    """The next chunk of customers after ``after``, what it bills and its usage (read only);
    None when no customer is left."""
    with pool.connection() as conn:
        ids = store.customer_ids(conn, after=after, limit=size)
        if not ids:
            return None
        plan = plan_chunk(conn, key, ids)
        rows = usage_store.UsageRows.empty()
        if plan.lo is not None and plan.hi is not None:
            rows = usage_store.load_usage_rows(conn, plan.series, plan.lo, plan.hi)
        conn.rollback()
    return _Planned(ids, plan), rows


def _store(
    pool: Pool,
    key: PeriodKey,
    *,
    run_id: int,
    after: int,
    planned: _Planned,
    drafts: list[DraftInvoice],
    now: datetime,
) -> ChunkResult:
    """One chunk's transaction: its drafts and the run's progress row; nothing is written
    when the run is done or moved past ``after`` meanwhile (another process closes too)."""
    with pool.connection() as conn, conn.transaction():
        current = runs.lock_run(conn, run_id)
        if current.status == "done" or current.last_customer_id != after:
            return ChunkResult(current, stored=False)
        written = 0
        if planned.plan.customers:
            written = invoices.store_drafts(
                conn, str(key), drafts, list(planned.plan.customers), run_id=run_id, now=now
            )
        runs.advance_run(
            conn,
            run_id,
            last_customer_id=planned.ids[-1],
            customers=len(planned.ids),
            invoices=len(drafts),
            lines=written,
            now=now,
        )
        return ChunkResult(runs.get_run(conn, run_id), stored=True)


def _pipelined(
    pool: Pool,
    key: PeriodKey,
    kind: str,
    *,
    now: datetime,
    cfg: CloseConfig,
    plans: PlanCache,
    progress: Progress | None,
) -> runs.BillingRun | None:
    """The draft run as a pipeline over three connections: while this thread rates chunk k, a
    loader reads the customers, subscriptions and usage of chunk k + 1 and a writer stores
    chunk k - 1 (each chunk still in one transaction with the run's progress row, committed in
    customer order). The server's work thus overlaps the client's. None if another process
    advanced the run meanwhile (the caller finishes it chunk by chunk)."""
    with pool.connection() as conn, conn.transaction():
        run = runs.start_or_resume_run(conn, str(key), kind, store.count_customers(conn), now)
    after = run.last_customer_id
    with (
        ThreadPoolExecutor(1, thread_name_prefix="close-load") as loader,
        ThreadPoolExecutor(1, thread_name_prefix="close-store") as writer,
    ):
        ahead = loader.submit(_plan_and_load, pool, key, after, cfg.chunk_size)
        stored: Future[ChunkResult] | None = None
        while (loaded := ahead.result()) is not None:
            chunk, rows = loaded
            ahead = loader.submit(_plan_and_load, pool, key, chunk.ids[-1], cfg.chunk_size)
            with pool.connection() as conn:
                drafts = compute_drafts(
                    conn, key, chunk.plan, rows, now=now, config=cfg, plans=plans
                )
                conn.rollback()
            del rows
            if stored is not None and not (last := _committed(stored, progress)).stored:
                return last.run if last.run.status == "done" else None
            stored = writer.submit(
                _store,
                pool,
                key,
                run_id=run.run_id,
                after=after,
                planned=chunk,
                drafts=drafts,
                now=now,
            )
            after = chunk.ids[-1]
        if stored is not None and not (last := _committed(stored, progress)).stored:
            return last.run if last.run.status == "done" else None
    with pool.connection() as conn, conn.transaction():
        current = runs.lock_run(conn, run.run_id)
        if current.status == "done":
            return current
        if current.last_customer_id != after:
            return None
        done = runs.finish_run(conn, run.run_id, now)
    if progress is not None:
        progress(done)
    return done


def _committed(stored: Future[ChunkResult], progress: Progress | None) -> ChunkResult:
    """Wait for a chunk's transaction (its errors are raised here) and report its progress."""
    result = stored.result()
    if result.stored and progress is not None:
        progress(result.run)
    return result


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

    def work(conn: Conn, ids: list[int], run_id: int) -> tuple[int, int]:
        stale = usage_store.stale_draft_customers(conn, str(key), ids)
        lines = 0
        if stale:
            lines = draft_chunk(conn, key, stale, now=now, config=cfg, plans=plans, run_id=run_id)[
                1
            ]
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
        config=cfg,
        work=work,
        progress=progress,
    )
