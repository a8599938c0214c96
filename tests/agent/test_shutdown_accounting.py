"""Shutdown under load: a reading is counted lost only when it truly was not stored, and the log
gives the true reason (exit code 3 means readings are really gone).

The buffer is the real SQLite one; a subclass only makes an append slow, before or after its
commit, as a saturated event loop or a busy worker thread does on a loaded host.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.buffer import SqliteBuffer
from agent.clock import SystemClock
from agent.config import AgentConfig, parse_config
from agent.errors import BufferError_
from agent.protocol import Reading
from agent.publisher_fake import FakePublisher
from agent.runner import Agent
from tests.agent.test_runner import Counter

T0 = 1_790_000_000_000


def _cfg(budget_s: float) -> AgentConfig:
    return parse_config({
        "device_id": "dev-r", "status_interval_s": 3600, "shutdown_timeout_s": budget_s,
        "broker": {"reconnect_min_s": 0.01, "reconnect_max_s": 0.05},
        "batch": {"max_readings": 10, "max_age_s": 0.05, "in_flight": 2},
    })


class SlowBuffer(SqliteBuffer):
    """Once ``slow`` is set, each append takes ``delay_s`` more: before its commit
    (``where="before"``: queued behind other work) or after it (``"after"``: the commit is on
    disk, its completion reaches the loop late)."""

    slow = False
    where = "after"
    delay_s = 0.6
    started: asyncio.Event

    async def append(self, readings: Sequence[Reading]) -> None:
        if not self.slow:
            await super().append(readings)
            return
        self.started.set()
        if self.where == "before":
            await asyncio.sleep(self.delay_s)
        await super().append(readings)
        if self.where == "after":
            await asyncio.sleep(self.delay_s)


class BrokenBuffer(SqliteBuffer):
    """Once ``broken`` is set, appends fail with an I/O error that is not a full disk."""

    broken = False

    async def append(self, readings: Sequence[Reading]) -> None:
        if self.broken:
            raise BufferError_("buffer append failed: disk I/O error")
        await super().append(readings)


def _taken(path: Path) -> int:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT coalesce(sum(value), 0) FROM counters "
                         "WHERE name LIKE 'taken:%'").fetchone()
    return int(row[0])


async def _shutdown_during_slow_append(path: Path, where: str) -> tuple[Agent, Counter, int]:
    buf = await SlowBuffer.open(path, device_id="dev-r", now_ms=T0)
    src = Counter(interval_s=0.01)
    agent = Agent(_cfg(0.15), buffer=buf, publisher=FakePublisher(), sources=[src],
                  clock=SystemClock())
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0.3)
    buf.where = where
    buf.started = asyncio.Event()
    buf.slow = True
    await asyncio.wait_for(buf.started.wait(), 5)  # a poll is inside a slow append now
    stop.set()  # the budget (0.15 s) ends before the append does: the poll is cancelled
    lost = await asyncio.wait_for(task, 10)
    return agent, src, lost


@pytest.mark.parametrize("where", ["after", "before"])
async def test_a_poll_cancelled_in_its_append_does_not_count_stored_readings_lost(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """The shutdown budget ends while a poll's append is under way: the append runs to its end
    and its outcome decides; the reading it held is stored, not counted lost, and no
    "disk full" appears in the log."""
    path = tmp_path / "buf.db"
    with caplog.at_level(logging.INFO, logger="agent"):
        agent, src, lost = await _shutdown_during_slow_append(path, where)
    assert lost == 0
    assert agent.health.lost_readings == 0
    assert _taken(path) == src.polls  # every reading the source gave is committed
    assert "disk full" not in caplog.text
    assert "could not be stored" not in caplog.text


async def test_readings_a_broken_buffer_refuses_are_lost_with_the_true_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Appends failing with an I/O error (not a full disk) are retried like a full disk; what
    is still unstored at the stop is counted lost with that error as the reason, exactly the
    readings the file does not hold."""
    path = tmp_path / "buf.db"
    buf = await BrokenBuffer.open(path, device_id="dev-r", now_ms=T0)
    src = Counter(interval_s=0.01)
    agent = Agent(_cfg(1.0), buffer=buf, publisher=FakePublisher(), sources=[src],
                  clock=SystemClock())
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="agent"):
        task = asyncio.create_task(agent.run(stop))
        await asyncio.sleep(0.2)
        buf.broken = True
        await asyncio.sleep(0.3)
        assert not task.done()  # the poll loop survives the error
        stop.set()
        lost = await asyncio.wait_for(task, 10)
    assert lost > 0
    assert lost == src.polls - _taken(path)
    assert agent.health.buffer_errors > 0
    assert "disk I/O error" in caplog.text
    assert "disk full" not in caplog.text
