"""Many real SQLite buffers on a few shared threads: each keeps its own file, order and errors."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from agent.buffer import SqliteBuffer
from agent.buffer_inspect import inspect_buffer
from agent.errors import BufferError_
from agent.protocol import Kind, Reading
from agent.sqlite_threads import SqliteThreads

T0 = 1_790_000_000_000


def _readings(meter: str, start: int, n: int) -> list[Reading]:
    return [Reading(meter, "energy_import", "kWh", Kind.CUMULATIVE, T0 + start + i, float(i))
            for i in range(n)]


async def test_many_buffers_share_two_threads_and_keep_their_own_data(tmp_path: Path) -> None:
    """40 buffers appending, sealing and acknowledging at once on 2 threads: every file holds
    exactly its own readings, and the process runs 2 SQLite threads, not 40."""
    before = threading.active_count()
    with SqliteThreads(2) as threads:
        assert threading.active_count() == before + 2
        bufs = [await SqliteBuffer.open(tmp_path / f"d{i}.db", device_id=f"d{i}", now_ms=T0,
                                        connect=threads.connect) for i in range(40)]
        assert threading.active_count() == before + 2

        async def work(i: int, buf: SqliteBuffer) -> None:
            for k in range(5):
                await buf.append(_readings(f"m{i}", k * 10, 3 + i % 4))
            sealed = await buf.seal(7, T0, max_batches=10)
            await buf.ack([b.seq for b in sealed[:1]])

        await asyncio.gather(*(work(i, b) for i, b in enumerate(bufs)))
        expected = []
        for i, buf in enumerate(bufs):
            stats = await buf.stats()
            assert stats.taken_by_meter == ((f"m{i}", 5 * (3 + i % 4)),)
            expected.append(stats.depth)
            await buf.close()
    assert threading.active_count() == before
    for i in range(40):  # what each file holds, read without the threads
        assert inspect_buffer(tmp_path / f"d{i}.db").depth == expected[i]
        assert expected[i] == 5 * (3 + i % 4) - 7


async def test_an_error_reaches_its_caller_and_the_thread_serves_the_others(
    tmp_path: Path,
) -> None:
    """A buffer refused (another device's file) raises as it would on its own thread; the
    shared thread goes on serving the other buffers."""
    with SqliteThreads(1) as threads:
        first = await SqliteBuffer.open(tmp_path / "a.db", device_id="a", now_ms=T0,
                                        connect=threads.connect)
        await first.close()
        with pytest.raises(BufferError_, match="belongs to device 'a'"):
            await SqliteBuffer.open(tmp_path / "a.db", device_id="b", now_ms=T0,
                                    connect=threads.connect)
        other = await SqliteBuffer.open(tmp_path / "c.db", device_id="c", now_ms=T0,
                                        connect=threads.connect)
        await other.append(_readings("m", 0, 3))
        assert (await other.stats()).depth == 3
        await other.close()


def test_connect_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="start"):
        SqliteThreads(1).connect(":memory:")
