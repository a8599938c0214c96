"""The SQLite buffer: durability, fixed batches, acknowledgement, bounds and disk-full recovery."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from agent.buffer import SqliteBuffer
from agent.buffer_fake import MemoryBuffer
from agent.buffer_port import BufferLimits, FullPolicy, ReadingBuffer
from agent.errors import BufferError_, BufferFullError, DiskFullError
from agent.protocol import MAX_SERIES_PER_BATCH, Kind, Reading

T0 = 1_732_492_800_000
DEV = "dev-1"


def readings(n: int, *, start: int = 0, meters: tuple[str, ...] = ("main",)) -> list[Reading]:
    return [
        Reading(meters[i % len(meters)], "energy_import", "kWh", Kind.CUMULATIVE,
                T0 + (start + i) * 1000, float(start + i) / 10)
        for i in range(n)
    ]


def flat(batch_series: object) -> list[tuple[str, int, float]]:
    out = []
    for s in batch_series:  # type: ignore[attr-defined]
        out += [(s.meter, int(t), float(v)) for t, v in zip(s.ts_ms, s.values, strict=True)]
    return sorted(out)


async def open_buf(path: Path, limits: BufferLimits | None = None) -> SqliteBuffer:
    return await SqliteBuffer.open(path / "buf.db", device_id=DEV, now_ms=T0, limits=limits)


@pytest.fixture(params=["sqlite", "memory"])
async def any_buffer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ReadingBuffer]:
    """Both implementations of the port."""
    buf: ReadingBuffer
    buf = await open_buf(tmp_path) if request.param == "sqlite" else MemoryBuffer(now_ms=T0)
    yield buf
    await buf.close()


async def test_both_buffers_batch_and_ack_alike(any_buffer: ReadingBuffer) -> None:
    """Sealing takes the oldest readings into consecutive seqs; ack removes exactly that batch."""
    await any_buffer.append(readings(25))
    seqs = [b.seq for b in await any_buffer.seal(10, T0, max_batches=5)]
    assert len(seqs) == 3
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    first = await any_buffer.load(seqs[0])
    assert flat(first.series) == flat([s for s in (await any_buffer.load(seqs[0])).series])
    assert [t for _, t, _ in flat(first.series)] == [T0 + i * 1000 for i in range(10)]
    await any_buffer.ack([seqs[0]])
    assert any_buffer.pending() == seqs[1:]
    assert (await any_buffer.stats()).depth == 15


async def test_committed_readings_survive_reopen(tmp_path: Path) -> None:
    """An appended reading is in the file: a new process sees it."""
    buf = await open_buf(tmp_path)
    await buf.append(readings(7))
    await buf.close()
    buf = await open_buf(tmp_path)
    assert (await buf.stats()).depth == 7
    assert buf.unbatched == 7
    await buf.close()


async def test_batch_is_fixed_across_reopen(tmp_path: Path) -> None:
    """A sealed batch re-read after a restart has the same seq and the same readings."""
    buf = await open_buf(tmp_path)
    await buf.append(readings(30, meters=("a", "b", "c")))
    [sealed] = await buf.seal(20, T0 + 5)
    seq = sealed.seq
    before = await buf.load(seq)
    assert before.series == sealed.series
    await buf.append(readings(5, start=100))
    await buf.close()
    buf = await open_buf(tmp_path)
    assert buf.pending() == [seq]
    after = await buf.load(seq)
    assert after.series == before.series
    assert after.sealed_ms == T0 + 5
    assert after.reading_count == 20
    assert buf.unbatched == 15
    await buf.close()


async def test_seq_continues_after_reopen(tmp_path: Path) -> None:
    """Seqs keep increasing across restarts; never reused."""
    buf = await open_buf(tmp_path)
    await buf.append(readings(2))
    [s1] = [b.seq for b in await buf.seal(1, T0)]
    await buf.ack([s1])
    await buf.close()
    buf = await open_buf(tmp_path)
    await buf.append(readings(1))
    seqs = [b.seq for b in await buf.seal(5, T0)]
    assert seqs == [s1 + 1, s1 + 2][: len(seqs)]
    assert seqs[0] == s1 + 1
    await buf.close()


async def test_fresh_buffer_seq_starts_from_creation_time(tmp_path: Path) -> None:
    """A new buffer file starts above any seq an older file of the same device reached."""
    buf = await open_buf(tmp_path)
    assert (await buf.stats()).next_seq == T0 * 1000
    await buf.close()


async def test_ack_deletes_only_that_batch(tmp_path: Path) -> None:
    """Readings are deleted after ack and not before."""
    buf = await open_buf(tmp_path)
    await buf.append(readings(10))
    s1, s2 = [b.seq for b in await buf.seal(5, T0, max_batches=2)]
    await buf.ack([s2])
    assert buf.pending() == [s1]
    assert (await buf.stats()).depth == 5
    assert (await buf.load(s1)).reading_count == 5
    with pytest.raises(BufferError_):
        await buf.load(s2)
    await buf.close()


async def test_series_sorted_by_time_even_if_appended_out_of_order(tmp_path: Path) -> None:
    """A clock that stepped back still gives non-negative offsets within a series."""
    buf = await open_buf(tmp_path)
    rs = readings(4)
    await buf.append([rs[2], rs[0], rs[3], rs[1]])
    [seq] = [b.seq for b in await buf.seal(10, T0)]
    [series] = (await buf.load(seq)).series
    assert np.all(np.diff(series.ts_ms) >= 0)
    await buf.close()


async def test_refuse_new_policy_raises_and_counts(tmp_path: Path) -> None:
    """At max_readings with refuse_new, new readings are refused and counted, old ones kept."""
    buf = await open_buf(tmp_path, BufferLimits(max_readings=10, policy=FullPolicy.REFUSE_NEW))
    await buf.append(readings(10))
    with pytest.raises(BufferFullError):
        await buf.append(readings(3, start=10))
    stats = await buf.stats()
    assert (stats.depth, stats.refused, stats.dropped) == (10, 3, 0)
    await buf.close()


async def test_drop_oldest_policy_keeps_newest(tmp_path: Path) -> None:
    """At max_readings with drop_oldest, the oldest unbatched readings make room and are counted."""
    buf = await open_buf(tmp_path, BufferLimits(max_readings=10, policy=FullPolicy.DROP_OLDEST))
    await buf.append(readings(10))
    await buf.append(readings(4, start=10))
    stats = await buf.stats()
    assert (stats.depth, stats.dropped, stats.refused) == (10, 4, 0)
    [seq] = [b.seq for b in await buf.seal(100, T0)]
    assert next(t for _, t, _ in flat((await buf.load(seq)).series)) == T0 + 4000
    await buf.close()


async def test_drop_oldest_drops_whole_sealed_batches_and_reports_their_seqs(
    tmp_path: Path,
) -> None:
    """When only sealed readings remain, the oldest batch goes whole: counted as dropped, its
    seq kept as skipped (to tell the collector) until the collector has recorded it."""
    buf = await open_buf(tmp_path, BufferLimits(max_readings=10, policy=FullPolicy.DROP_OLDEST))
    await buf.append(readings(5))
    [first] = [b.seq for b in await buf.seal(5, T0)]
    await buf.append(readings(5, start=5))
    [second] = [b.seq for b in await buf.seal(5, T0)]
    await buf.mark_sent([first], T0)
    await buf.append(readings(1, start=10))
    stats = await buf.stats()
    assert (stats.depth, stats.dropped, stats.dropped_batches, stats.refused) == (6, 5, 1, 0)
    assert buf.pending() == [second]
    assert buf.sent() == {}
    assert buf.skipped() == [first]
    assert (await buf.load(second)).reading_count == 5
    await buf.close()
    buf = await open_buf(tmp_path, BufferLimits(max_readings=10, policy=FullPolicy.DROP_OLDEST))
    assert buf.skipped() == [first]  # durable until reported
    await buf.forget_skipped([first])
    assert buf.skipped() == []
    await buf.close()


async def test_max_bytes_bound_drops_oldest(tmp_path: Path) -> None:
    """With a byte bound and drop_oldest the used size stops growing near the bound."""
    limit = 256 * 1024
    buf = await open_buf(tmp_path, BufferLimits(max_bytes=limit, policy=FullPolicy.DROP_OLDEST))
    for i in range(60):
        await buf.append(readings(200, start=i * 200))
    stats = await buf.stats()
    assert stats.dropped > 0
    assert stats.used_bytes <= limit * 1.25
    await buf.close()


async def _shrink(buf: SqliteBuffer, pages: int | None) -> None:
    conn = buf._conn  # test-only access to force SQLITE_FULL
    if pages is None:
        await conn.execute("PRAGMA max_page_count = 1073741823")
    else:
        async with conn.execute("PRAGMA page_count") as cur:
            row = await cur.fetchone()
        assert row is not None
        await conn.execute(f"PRAGMA max_page_count = {int(row[0]) + pages}")


async def test_disk_full_is_reported_then_recovers(tmp_path: Path) -> None:
    """SQLITE_FULL becomes DiskFullError, nothing half-written, and appends resume with space."""
    buf = await open_buf(tmp_path)
    await buf.append(readings(50))
    await _shrink(buf, 0)
    with pytest.raises(DiskFullError):
        await buf.append(readings(5000, start=50))
    assert (await buf.stats()).depth == 50
    await _shrink(buf, None)
    await buf.append(readings(5000, start=50))
    [seq] = [b.seq for b in await buf.seal(10_000, T0)]
    assert (await buf.load(seq)).reading_count == 5050
    await buf.close()
    with sqlite3.connect(tmp_path / "buf.db") as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_disk_full_during_seal_leaves_batch_unassigned(tmp_path: Path) -> None:
    """A seal that hits a full disk rolls back: the readings stay unbatched and the seq unused."""
    buf = await open_buf(tmp_path)
    await buf.append(readings(3000))
    next_seq = (await buf.stats()).next_seq
    await _shrink(buf, 0)
    with pytest.raises(DiskFullError):
        await buf.seal(3000, T0)
    await _shrink(buf, None)
    assert buf.unbatched == 3000
    assert buf.pending() == []
    assert [b.seq for b in await buf.seal(3000, T0)] == [next_seq]
    await buf.close()


async def test_other_devices_buffer_is_refused(tmp_path: Path) -> None:
    """Opening a buffer file written for another device id fails with a clear error."""
    buf = await open_buf(tmp_path)
    await buf.close()
    with pytest.raises(BufferError_, match="belongs to device"):
        await SqliteBuffer.open(tmp_path / "buf.db", device_id="other", now_ms=T0)


@pytest.mark.parametrize("make", ["sqlite", "memory"])
async def test_state_store_round_trip(make: str, tmp_path: Path) -> None:
    """Saved source state is loaded back; unknown keys give None."""
    opener: Callable[[], Awaitable[ReadingBuffer]]
    if make == "sqlite":
        async def opener() -> ReadingBuffer:
            return await open_buf(tmp_path)
    else:
        mem = MemoryBuffer()

        async def opener() -> ReadingBuffer:
            return mem
    buf = await opener()
    await buf.save_state("m1", '{"kwh": 1.5}')
    await buf.save_state("m1", '{"kwh": 2.5}')
    await buf.close()
    buf = await opener()
    assert await buf.load_state("m1") == '{"kwh": 2.5}'
    assert await buf.load_state("nope") is None
    await buf.close()


async def test_batch_never_exceeds_the_series_limit(tmp_path: Path) -> None:
    """Readings of more than 256 series are split so no batch breaks MAX_SERIES_PER_BATCH."""
    buf = await open_buf(tmp_path)
    meters = tuple(f"m{i}" for i in range(300))
    await buf.append(readings(600, meters=meters))
    sealed = await buf.seal(1000, T0, max_batches=5)
    # round robin over m0..m299: the 257th distinct meter appears at readings 256 and 512
    assert [b.reading_count for b in sealed] == [256, 256, 88]
    assert all(len(b.series) <= MAX_SERIES_PER_BATCH for b in sealed)
    assert sum(b.reading_count for b in sealed) == 600
    assert buf.unbatched == 0
    await buf.close()
