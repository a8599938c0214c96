"""Period close: draft one invoice per customer, refresh drafts, finalize with gapless numbers.

Customers are processed in chunks (ordered by id), each chunk in ONE transaction together with
the run's progress row, so a killed close resumes after the last committed chunk and re-running
never duplicates an invoice. Per chunk everything is set-based: one query for the customers,
one for their subscriptions, one binary COPY per 500 meters of their interval usage (the usage
engine's packed ``usage_15m_daily``, decoded by numpy in one go), one query of the demand peaks
of earlier final invoices (ratchets), one rating-engine call per (plan version, unit), one COPY
of the invoices into a staging table and one ``INSERT … SELECT … ON CONFLICT`` from it, and one
COPY each of lines and of the new demand peaks. Drafting is a pipeline (``close_pipeline``):
chunks are read and rated ahead, in threads or in rating processes, while the previous one is
stored on another connection; a chunk is drafted by ``chunk_drafting``.
Finalizing numbers a chunk with one UPDATE.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool

from collector.billing.chunk_drafting import (
    ChunkPlan,
    CloseConfig,
    PlanCache,
    compute_drafts,
    draft_chunk,
    plan_chunk,
)
from collector.billing.close_pipeline import pipelined_run
from collector.billing.credit_note_run import issue_credit_notes
from collector.billing.finalize_guard import ForceReason
from collector.billing.finalizing import check_period
from collector.billing.periods import PeriodKey
from collector.billing.wallet_on_finalize import apply_on_finalize
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_run_store as runs
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store

__all__ = [
    "ChunkPlan",
    "CloseConfig",
    "PlanCache",
    "begin_run",
    "close_period",
    "compute_drafts",
    "draft_chunk",
    "finalize_period",
    "plan_chunk",
    "refresh_period",
]

Conn = psycopg.Connection[Any]
Pool = psycopg_pool.ConnectionPool[Any]
Progress = Callable[[runs.BillingRun], None]
Work = Callable[[Conn, list[int], int], tuple[int, int]]


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
    (``close_pipeline``) unless ``cfg.pipeline`` is off; the chunk-by-chunk loop finishes a run
    that another process works on too."""
    plans = PlanCache()
    if cfg.pipeline:
        done = pipelined_run(pool, key, kind, now=now, cfg=cfg, plans=plans, progress=progress)
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
