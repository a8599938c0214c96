"""Outcome of the collector's background upkeep tasks (usage refresh, rollups, partitions).

A task that keeps failing must be visible to operators where they look (``/health`` and a
metrics hook), never only in a log line. :class:`UpkeepTracker` records each run's outcome
(time passed in, no I/O) and says which tasks are failing: ``failing_after`` failures in a row.
An optional ``hook`` is called with every outcome, for a metrics exporter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

__all__ = ["TaskOutcome", "TaskStatus", "UpkeepTracker"]

_MAX_ERROR: Final = 500


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """One run of a task, as passed to the metrics hook."""

    task: str
    at: datetime
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """What ``/health`` shows of a task."""

    task: str
    failing: bool
    runs: int
    failures: int
    consecutive_failures: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None


class UpkeepTracker:
    """Thread-safe record of task outcomes; ``failing_after`` failures in a row = failing."""

    def __init__(
        self, *, failing_after: int = 3, hook: Callable[[TaskOutcome], None] | None = None
    ) -> None:
        if failing_after < 1:
            raise ValueError("failing_after must be >= 1")
        self._failing_after = failing_after
        self._hook = hook
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskStatus] = {}

    def _current(self, task: str) -> TaskStatus:
        return self._tasks.get(task) or TaskStatus(task, False, 0, 0, 0, None, None, None)

    def succeeded(self, task: str, at: datetime) -> None:
        with self._lock:
            st = self._current(task)
            self._tasks[task] = replace(
                st, failing=False, runs=st.runs + 1, consecutive_failures=0, last_run_at=at,
                last_success_at=at,
            )
        if self._hook is not None:
            self._hook(TaskOutcome(task, at, True))

    def failed(self, task: str, at: datetime, error: str) -> None:
        error = error[:_MAX_ERROR]
        with self._lock:
            st = self._current(task)
            streak = st.consecutive_failures + 1
            self._tasks[task] = replace(
                st, failing=streak >= self._failing_after, runs=st.runs + 1,
                failures=st.failures + 1, consecutive_failures=streak, last_run_at=at,
                last_error=error,
            )
        if self._hook is not None:
            self._hook(TaskOutcome(task, at, False, error))

    def snapshot(self) -> list[TaskStatus]:
        with self._lock:
            return sorted(self._tasks.values(), key=lambda t: t.task)
