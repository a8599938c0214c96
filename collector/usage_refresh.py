"""The usage refresh loop: keeps interval usage a pass or two behind ingest, not a timer behind.

A pass is one :func:`collector.storage.usage_store.refresh_usage` transaction. Passes run

* as soon as the ingest writer has committed readings (:meth:`UsageRefresher.wake`, called
  after the flush's COMMIT), so what a device sent is derived by the next pass, not after a
  fixed polling wait;
* again at once while a pass left ranges queued (a backlog drains pass after pass; each pass
  takes both the newest and the oldest ranges, see ``take_dirty``);
* at least every ``poll_s`` otherwise, for ranges queued by other processes (meter changes
  made through the API, another collector's ingest).

Wake-ups that arrive while a pass runs are coalesced into one next pass, and two passes start
at least ``min_gap_s`` apart, so a busy ingest does not turn into one tiny transaction per
flush; while ingest itself is behind (messages waiting beyond one flush), at least
``behind_gap_s`` apart, so that the refresh leaves the machine to storing readings.
Exactness does not depend on any of this: every range stays queued in ``usage_dirty``
until the transaction that derived it commits, so a crash between the ingest commit and the
refresh only delays it (the next process derives it), and the order of passes never changes
the result (each pass re-derives from the readings stored).

Each pass reports how long its oldest range had waited since the ingest transaction that
queued it: the commit → visible time, kept as a histogram for ``/metrics`` and shown in
``/health`` (:class:`RefreshStats`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg import Connection

from agent.clock import Clock
from collector.errors import StorageError
from collector.storage.database import Pool, translate_errors
from collector.storage.usage_store import (
    MAX_LOADED,
    RefreshReport,
    refresh_rollups,
    refresh_usage,
    uses_timescale,
)
from collector.upkeep import UpkeepTracker

__all__ = ["FRESHNESS_BUCKETS_S", "RefreshSettings", "RefreshStats", "UsageRefresher"]

_log = logging.getLogger(__name__)

# upper bounds (seconds) of the commit → visible histogram; +Inf is implied
FRESHNESS_BUCKETS_S: Final = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    """When passes run and how much one takes."""

    poll_s: float = 1.0  # longest wait without a wake-up (ranges queued by other processes)
    min_gap_s: float = 0.1  # shortest time between the starts of two passes
    limit: int = 5000  # series per pass (``take_dirty``)
    max_readings: int = MAX_LOADED  # readings held at once by a pass (loaded in groups)
    retry_s: float = 10.0  # wait after a failed pass
    rollups_every_s: float = 5.0  # TimescaleDB continuous aggregates, at most this often
    # while ingest itself is behind (``ingest_behind``), passes start at most this often:
    # the readings come first, and fewer, larger passes cost less per reading
    behind_gap_s: float = 1.0
    owner_role: str | None = None  # role that owns the aggregates (``refresh_rollups``)

    def __post_init__(self) -> None:
        if self.poll_s <= 0 or self.min_gap_s < 0 or self.retry_s < 0:
            raise ValueError("poll_s must be > 0, min_gap_s and retry_s >= 0")
        if self.limit < 1 or self.max_readings < 1:
            raise ValueError("limit and max_readings must be >= 1")


@dataclass(frozen=True, slots=True)
class RefreshStats:
    """A snapshot of the loop's counters (``/metrics``, ``/health``)."""

    passes: int = 0
    busy_passes: int = 0  # another refresher held the lock
    failures: int = 0
    seconds_total: float = 0.0  # time spent in passes
    last_pass_s: float | None = None
    last_freshness_s: float | None = None  # commit → visible of the last pass's oldest range
    # cumulative counts per bucket of FRESHNESS_BUCKETS_S, then +Inf; sum of observations
    freshness_counts: tuple[int, ...] = (0,) * (len(FRESHNESS_BUCKETS_S) + 1)
    freshness_sum: float = 0.0


@dataclass(slots=True)
class _Counters:
    passes: int = 0
    busy_passes: int = 0
    failures: int = 0
    seconds_total: float = 0.0
    last_pass_s: float | None = None
    last_freshness_s: float | None = None
    counts: list[int] = field(default_factory=lambda: [0] * (len(FRESHNESS_BUCKETS_S) + 1))
    freshness_sum: float = 0.0

    def observe(self, freshness_s: float) -> None:
        self.last_freshness_s = freshness_s
        self.freshness_sum += freshness_s
        for i, le in enumerate(FRESHNESS_BUCKETS_S):
            if freshness_s <= le:
                self.counts[i] += 1
        self.counts[-1] += 1


class UsageRefresher:
    """Runs refresh passes in its own thread (``run``); ``wake`` is safe from any thread."""

    def __init__(
        self,
        pool: Pool,
        clock: Clock,
        upkeep: UpkeepTracker,
        settings: RefreshSettings | None = None,
        ingest_behind: Callable[[], bool] | None = None,
    ) -> None:
        self._pool = pool
        self._ingest_behind = ingest_behind
        self._clock = clock
        self._upkeep = upkeep
        self._settings = settings or RefreshSettings()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._last_rollups: float | None = None

    def wake(self) -> None:
        """New readings were committed: run a pass soon (wake-ups coalesce)."""
        self._wake.set()

    def stats(self) -> RefreshStats:
        with self._lock:
            c = self._counters
            return RefreshStats(
                c.passes, c.busy_passes, c.failures, c.seconds_total, c.last_pass_s,
                c.last_freshness_s, tuple(c.counts), c.freshness_sum,
            )

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set (then ``wake`` once to end the wait).

        The first pass runs at once: ranges left queued by a process that stopped (or
        crashed) between its ingest commit and its refresh are derived now.
        """
        s = self._settings
        last_start: float | None = None
        self._wake.set()
        while not stop.is_set():
            self._wake.wait(s.poll_s)
            if stop.is_set():
                return
            if last_start is not None:
                behind = self._ingest_behind is not None and self._ingest_behind()
                gap_s = max(s.min_gap_s, s.behind_gap_s) if behind else s.min_gap_s
                gap = last_start + gap_s - self._clock.monotonic()
                if gap > 0 and stop.wait(gap):
                    return
            self._wake.clear()
            last_start = self._clock.monotonic()
            report = self.run_pass()
            if report is None:
                stop.wait(s.retry_s)
                self._wake.set()  # retry now that the wait is over
            elif report.more or report.busy:
                self._wake.set()

    def run_pass(self) -> RefreshReport | None:
        """One pass (and the rollups when due); None when it failed (recorded in upkeep)."""
        started = self._clock.monotonic()
        try:
            with translate_errors("usage refresh"), self._pool.connection() as conn:
                conn.autocommit = True  # lets TimescaleDB refresh its aggregates after
                try:
                    report = refresh_usage(
                        conn, self._clock.now(), limit=self._settings.limit, rollups=False,
                        max_readings=self._settings.max_readings,
                    )
                    took = self._clock.monotonic() - started
                    self._rollups(conn, report)
                finally:
                    if not conn.closed:
                        conn.autocommit = False
        except StorageError as exc:
            _log.warning("usage refresh failed (will retry): %s", exc)
            self._upkeep.failed("usage_refresh", self._clock.now(), str(exc))
            with self._lock:
                self._counters.failures += 1
            return None
        self._upkeep.succeeded("usage_refresh", self._clock.now())
        with self._lock:
            c = self._counters
            if report.busy:
                c.busy_passes += 1
                return report
            c.passes += 1
            c.seconds_total += took
            c.last_pass_s = took
            if report.oldest_wait_s is not None:
                c.observe(report.oldest_wait_s + took)
        return report

    def _rollups(self, conn: Connection[Any], report: RefreshReport) -> None:
        """TimescaleDB's continuous aggregates, on their own (slower) cadence."""
        now = self._clock.monotonic()
        last = self._last_rollups
        if report.busy or (last is not None and now - last < self._settings.rollups_every_s):
            return
        self._last_rollups = now
        if not uses_timescale(conn):
            return
        try:
            refresh_rollups(conn, owner_role=self._settings.owner_role)
        except StorageError as exc:
            _log.warning("usage rollup refresh failed (will retry): %s", exc)
            self._upkeep.failed("usage_rollups", self._clock.now(), str(exc))
        else:
            self._upkeep.succeeded("usage_rollups", self._clock.now())
