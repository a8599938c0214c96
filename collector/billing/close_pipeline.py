"""The draft run of a period close as a pipeline: chunks are read and rated ahead while a
writer stores the previous chunk, each chunk still in ONE transaction with the run's progress
row, committed in customer order.

Two ways to rate ahead (``CloseConfig.processes``):

- ``0``: threads of this process. A loader reads chunk k + 1 (customers, subscriptions,
  usage), this thread rates chunk k, a writer stores chunk k - 1. Rating and decoding the usage
  share one interpreter lock, so the client's work of a chunk runs on one core at a time.
- ``n > 0``: ``n`` rating processes (spawned, so no connection or thread is inherited), each
  reading and rating whole chunks on a connection of its own, read only; up to ``n + 1`` chunks
  are in flight. This process only lists the chunks and stores them in order, so the client's
  work spreads over the cores the database server leaves free.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool

from collector.billing.chunk_drafting import (
    ChunkPlan,
    CloseConfig,
    PlanCache,
    compute_drafts,
    plan_chunk,
)
from collector.billing.model import DraftInvoice
from collector.billing.periods import PeriodKey
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_run_store as runs
from collector.storage import billing_store as store
from collector.storage import billing_usage_store as usage_store

Pool = psycopg_pool.ConnectionPool[Any]
Progress = Callable[[runs.BillingRun], None]


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The run after one chunk's transaction; ``stored`` False if nothing was written because
    the run was done or moved on meanwhile (another process works on it too)."""

    run: runs.BillingRun
    stored: bool


@dataclass(frozen=True, slots=True)
class RatedChunk:
    """One chunk's drafts, computed outside its transaction: ``ids`` the customers listed,
    ``replace`` those whose drafts it replaces (the ones without a final invoice)."""

    ids: list[int]
    replace: list[int]
    drafts: list[DraftInvoice]


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


def rate_chunk_apart(
    conninfo: str,
    *,
    connect_kwargs: dict[str, Any],
    key: PeriodKey,
    ids: list[int],
    now: datetime,
    config: CloseConfig,
) -> RatedChunk:
    """Plan, read and rate one chunk on a connection of its own, read only (rolled back): the
    work of a rating process. Module-level so that a spawned process can import it."""
    with psycopg.connect(conninfo, **connect_kwargs) as conn:
        plan = plan_chunk(conn, key, ids)
        drafts: list[DraftInvoice] = []
        if plan.lo is not None and plan.hi is not None:
            rows = usage_store.load_usage_rows(conn, plan.series, plan.lo, plan.hi)
            drafts = compute_drafts(
                conn, key, plan, rows, now=now, config=config, plans=PlanCache()
            )
        conn.rollback()
    return RatedChunk(ids, list(plan.customers), drafts)


def _rated_in_threads(
    pool: Pool, key: PeriodKey, after: int, *, now: datetime, cfg: CloseConfig, plans: PlanCache
) -> Generator[RatedChunk, None, None]:
    """Chunks after ``after`` in customer order, rated here while a loader reads the next."""
    with ThreadPoolExecutor(1, thread_name_prefix="close-load") as loader:
        ahead = loader.submit(_plan_and_load, pool, key, after, cfg.chunk_size)
        while (loaded := ahead.result()) is not None:
            chunk, rows = loaded
            ahead = loader.submit(_plan_and_load, pool, key, chunk.ids[-1], cfg.chunk_size)
            with pool.connection() as conn:
                drafts = compute_drafts(
                    conn, key, chunk.plan, rows, now=now, config=cfg, plans=plans
                )
                conn.rollback()
            del rows
            yield RatedChunk(chunk.ids, list(chunk.plan.customers), drafts)


def _rated_in_processes(
    pool: Pool, key: PeriodKey, after: int, *, now: datetime, cfg: CloseConfig
) -> Generator[RatedChunk, None, None]:
    """Chunks after ``after`` in customer order, rated by ``cfg.processes`` processes with up
    to ``cfg.processes + 1`` chunks in flight; chunks are listed as they are handed out, so
    customers created meanwhile are drafted as in the chunk-by-chunk loop."""
    conninfo = pool.conninfo if isinstance(pool.conninfo, str) else pool.conninfo()
    kwargs = pool.kwargs() if callable(pool.kwargs) else dict(pool.kwargs or {})
    raters = ProcessPoolExecutor(cfg.processes, mp_context=multiprocessing.get_context("spawn"))
    try:
        ahead: deque[Future[RatedChunk]] = deque()
        listed, exhausted = after, False
        while True:
            while not exhausted and len(ahead) <= cfg.processes:
                with pool.connection() as conn:
                    ids = store.customer_ids(conn, after=listed, limit=cfg.chunk_size)
                if not ids:
                    exhausted = True
                    break
                ahead.append(
                    raters.submit(
                        rate_chunk_apart,
                        conninfo,
                        connect_kwargs=kwargs,
                        key=key,
                        ids=ids,
                        now=now,
                        config=cfg,
                    )
                )
                listed = ids[-1]
            if not ahead:
                return
            yield ahead.popleft().result()
    finally:
        raters.shutdown(wait=True, cancel_futures=True)


def _store(
    pool: Pool,
    key: PeriodKey,
    *,
    run_id: int,
    after: int,
    chunk: RatedChunk,
    now: datetime,
) -> ChunkResult:
    """One chunk's transaction: its drafts and the run's progress row; nothing is written
    when the run is done or moved past ``after`` meanwhile (another process closes too)."""
    with pool.connection() as conn, conn.transaction():
        current = runs.lock_run(conn, run_id)
        if current.status == "done" or current.last_customer_id != after:
            return ChunkResult(current, stored=False)
        written = 0
        if chunk.replace:
            written = invoices.store_drafts(
                conn, str(key), chunk.drafts, chunk.replace, run_id=run_id, now=now
            )
        runs.advance_run(
            conn,
            run_id,
            last_customer_id=chunk.ids[-1],
            customers=len(chunk.ids),
            invoices=len(chunk.drafts),
            lines=written,
            now=now,
        )
        return ChunkResult(runs.get_run(conn, run_id), stored=True)


def pipelined_run(
    pool: Pool,
    key: PeriodKey,
    kind: str,
    *,
    now: datetime,
    cfg: CloseConfig,
    plans: PlanCache,
    progress: Progress | None,
) -> runs.BillingRun | None:
    """The draft run of ``kind`` as a pipeline: chunks rated ahead (in threads, or in
    ``cfg.processes`` processes) while a writer thread stores the previous one, so the
    server's work overlaps the client's. None if another process advanced the run meanwhile
    (the caller finishes it chunk by chunk)."""
    with pool.connection() as conn, conn.transaction():
        run = runs.start_or_resume_run(conn, str(key), kind, store.count_customers(conn), now)
    after = run.last_customer_id
    rated = (
        _rated_in_processes(pool, key, after, now=now, cfg=cfg)
        if cfg.processes
        else _rated_in_threads(pool, key, after, now=now, cfg=cfg, plans=plans)
    )
    with (
        closing(rated),
        ThreadPoolExecutor(1, thread_name_prefix="close-store") as writer,
    ):
        stored: Future[ChunkResult] | None = None
        for chunk in rated:
            if stored is not None and not (last := _committed(stored, progress)).stored:
                return last.run if last.run.status == "done" else None
            stored = writer.submit(
                _store, pool, key, run_id=run.run_id, after=after, chunk=chunk, now=now
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
