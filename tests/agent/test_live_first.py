"""Fresh readings first: while a backlog drains, live readings are sealed and sent before it."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from agent.buffer import SqliteBuffer
from agent.buffer_fake import MemoryBuffer
from agent.buffer_port import ReadingBuffer, SealedBatch
from agent.clock import SystemClock, to_ms
from agent.config import parse_config
from agent.protocol import Kind, Reading, decode_batch
from agent.protocol_ack import Ack, ack_topic, encode_ack
from agent.publisher_fake import FakePublisher
from agent.runner import Agent
from tests.agent.test_buffer import T0, any_buffer, flat, open_buf, readings
from tests.agent.test_runner import Counter

__all__ = ["any_buffer"]  # the fixture, imported for the tests below
DEVICE = "dev-r"


async def test_a_lane_seals_only_its_readings_and_the_backlog_skips_them(
    any_buffer: ReadingBuffer,
) -> None:
    """Readings of an id lane are sealed first; sealing the oldest later leaves them alone."""
    await any_buffer.append(readings(25))
    mark = any_buffer.last_id
    await any_buffer.append(readings(5, start=100))
    [live] = await any_buffer.seal(10, T0, lane=(mark, any_buffer.last_id))
    assert [t for _, t, _ in flat(live.series)] == [T0 + (100 + i) * 1000 for i in range(5)]
    backlog = await any_buffer.seal(10, T0, max_batches=5)
    assert [b.reading_count for b in backlog] == [10, 10, 5]
    assert [t for b in backlog for _, t, _ in flat(b.series)] == [
        T0 + i * 1000 for i in range(25)]
    assert any_buffer.unbatched == 0
    assert await any_buffer.seal(10, T0) == []
    assert flat((await any_buffer.load(live.seq)).series) == flat(live.series)
    await any_buffer.ack([live.seq])
    assert [flat((await any_buffer.load(b.seq)).series) for b in backlog] == [
        flat(b.series) for b in backlog]


async def test_a_backlog_seal_bounded_by_the_lane_leaves_newer_readings(
    any_buffer: ReadingBuffer,
) -> None:
    """``lane=(0, mark)`` seals the backlog only; readings above the mark wait for their lane."""
    await any_buffer.append(readings(8))
    mark = any_buffer.last_id
    await any_buffer.append(readings(4, start=50))
    [old] = await any_buffer.seal(10, T0, lane=(0, mark))
    assert old.reading_count == 8
    assert any_buffer.unbatched == 4
    [new] = await any_buffer.seal(10, T0)
    assert [t for _, t, _ in flat(new.series)] == [T0 + (50 + i) * 1000 for i in range(4)]


async def test_sqlite_lanes_survive_a_restart(tmp_path: Path) -> None:
    """After lanes were sealed out of id order, a reopened file still seals each reading once."""
    buf = await open_buf(tmp_path)
    await buf.append(readings(30))
    mark = buf.last_id
    await buf.append(readings(10, start=200))
    [live] = await buf.seal(10, T0, lane=(mark, buf.last_id))
    [first] = await buf.seal(10, T0, lane=(0, mark))
    await buf.close()
    buf = await open_buf(tmp_path)
    try:
        assert buf.last_id == mark + 10
        assert buf.unbatched == 20
        await buf.append(readings(3, start=500))
        rest = await buf.seal(10, T0, max_batches=5)
        got = [t for b in (first, *rest) for _, t, _ in flat(b.series)]
        assert sorted(got) == [T0 + i * 1000 for i in range(30)] + [
            T0 + (500 + i) * 1000 for i in range(3)]
        assert buf.pending() == [live.seq, first.seq, *[b.seq for b in rest]]
    finally:
        await buf.close()


async def test_live_readings_are_published_before_the_backlog_has_drained() -> None:
    """With 60 batches of backlog and a collector slower than the agent, the first live batch
    goes out while most of the backlog still waits; in the end every reading went once."""
    clock = SystemClock()
    buf, pub = MemoryBuffer(now_ms=to_ms(clock.now())), FakePublisher(hold_confirms=True)
    t0 = to_ms(clock.now()) - 3_600_000
    await buf.append([Reading("old", "count", "1", Kind.CUMULATIVE, t0 + i * 1000, float(i))
                      for i in range(600)])
    cfg = parse_config({
        "device_id": DEVICE, "status_interval_s": 3600, "shutdown_timeout_s": 5,
        "batch": {"max_readings": 10, "max_age_s": 0.05, "in_flight": 2, "window": 4},
    })
    live = Counter("live", interval_s=0.01)
    agent = Agent(cfg, buffer=buf, publisher=pub, sources=[live], clock=clock)

    async def collector() -> None:  # confirms what was sent, 10 times a second
        while True:
            await asyncio.sleep(0.1)
            for seq in list(buf.sent()):
                pub.deliver(ack_topic(DEVICE), encode_ack(Ack(DEVICE, seq, ((seq, seq),))))

    stop = asyncio.Event()
    confirmer = asyncio.create_task(collector())
    task = asyncio.create_task(agent.run(stop))
    for _ in range(300):  # until the whole backlog went out
        await asyncio.sleep(0.05)
        if [m for m, _ in published(pub)].count("old") == 60:
            break
    stop.set()
    await asyncio.wait_for(task, 10)
    assert buf.pending() == []
    assert buf.unbatched == 0
    confirmer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await confirmer
    order = [m for m, _ in published(pub)]
    first_live = order.index("live")
    assert order[:first_live].count("old") < 30, order[:first_live + 1]
    assert order.count("old") == 60
    values = [(m, v) for m, vs in published_values(pub) for v in vs]
    assert sorted(v for m, v in values if m == "old") == [float(i) for i in range(600)]
    live_values = [v for m, v in values if m == "live"]
    assert sorted(live_values) == [float(i) for i in range(1, live.polls + 1)]


def _batches(pub: FakePublisher) -> dict[int, tuple[str, list[float]]]:
    """Published batches by seq (a re-send has the same seq and readings), in send order."""
    out: dict[int, tuple[str, list[float]]] = {}
    for topic, payload, _ in pub.messages:
        if topic.endswith("/readings"):
            b = decode_batch(payload, topic_device=DEVICE, now_ms=to_ms(SystemClock().now()))
            meters = {s.meter for s in b.series}
            out.setdefault(b.seq, ("live" if "live" in meters else "old",
                                   [v for s in b.series for v in s.values.tolist()]))
    return out


def published(pub: FakePublisher) -> list[tuple[str, int]]:
    return [(m, seq) for seq, (m, _) in _batches(pub).items()]


def published_values(pub: FakePublisher) -> list[tuple[str, list[float]]]:
    return list(_batches(pub).values())


async def test_sqlite_buffer_keeps_its_last_id_on_reopen(tmp_path: Path) -> None:
    """Ids are never reused: after every reading is acknowledged, the next one gets a new id."""
    buf = await SqliteBuffer.open(tmp_path / "b.db", device_id=DEVICE, now_ms=T0)
    await buf.append(readings(5))
    [b] = await buf.seal(10, T0)
    await buf.ack([b.seq])
    await buf.close()
    buf = await SqliteBuffer.open(tmp_path / "b.db", device_id=DEVICE, now_ms=T0)
    try:
        assert buf.last_id == 5
        await buf.append(readings(1))
        assert buf.last_id == 6
    finally:
        await buf.close()


class _AppendsWhileSealing(MemoryBuffer):
    """A buffer where a poll's append lands while a seal is in progress: once, or with
    ``every_seal`` during every seal (a second meter polled in step with the sealing)."""

    def __init__(self, now_ms: int, *, every_seal: bool = False) -> None:
        super().__init__(now_ms=now_ms)
        self.during_seal: list[Reading] = []
        self.agent: Agent | None = None
        self.every_seal = every_seal
        self.seals = 0  # seal transactions
        self.late = 0  # readings appended while a seal was in progress

    async def seal(self, max_readings: int, now_ms: int, *, max_batches: int = 1,
                   lane: tuple[int, int] | None = None) -> list[SealedBatch]:
        self.seals += 1
        out = await super().seal(max_readings, now_ms, max_batches=max_batches, lane=lane)
        if self.every_seal and not self.during_seal:
            self.during_seal = [Reading("late", "count", "1", Kind.CUMULATIVE, now_ms,
                                        float(self.late))]
        if self.during_seal and self.agent is not None:
            late, self.during_seal = self.during_seal, []
            self.late += len(late)
            await self.agent._store(late)  # the poll loop's own path
        return out


async def test_a_reading_appended_during_a_seal_is_still_sent() -> None:
    """The live lane's age is kept for a reading that arrived while the lane was sealing, and
    at shutdown whatever the lane holds is sealed: nothing stays behind in the buffer."""
    clock = SystemClock()
    buf = _AppendsWhileSealing(to_ms(clock.now()))
    buf.during_seal = [Reading("late", "count", "1", Kind.CUMULATIVE, to_ms(clock.now()), 1.0)]
    pub = FakePublisher()
    cfg = parse_config({
        "device_id": DEVICE, "status_interval_s": 3600, "shutdown_timeout_s": 2,
        "batch": {"max_readings": 10, "max_age_s": 0.05, "in_flight": 2},
    })
    agent = Agent(cfg, buffer=buf, publisher=pub, sources=[Counter("live", interval_s=60)],
                  clock=clock)
    buf.agent = agent
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert buf.unbatched == 0
    assert buf.pending() == []
    assert sorted(m for m, _ in published(pub)) == ["live", "old"]  # "old": not the live meter


async def test_a_reading_stored_during_a_seal_waits_for_the_next_batch() -> None:
    """A reading that lands while the live lane is sealing starts the lane's age afresh: it
    goes in the next batch, ``max_age_s`` later, with the readings after it. Sealed at once,
    alone, it cost a seal transaction, a publish and a delete per reading (two meters polled
    in step), and its own seal let the next one land: one batch per reading."""
    clock = SystemClock()
    buf = _AppendsWhileSealing(to_ms(clock.now()), every_seal=True)
    pub = FakePublisher()
    cfg = parse_config({
        "device_id": DEVICE, "status_interval_s": 3600, "shutdown_timeout_s": 5,
        "batch": {"max_readings": 100, "max_age_s": 0.2, "in_flight": 2},
    })
    live = Counter("live", interval_s=0.02)
    agent = Agent(cfg, buffer=buf, publisher=pub, sources=[live], clock=clock)
    buf.agent = agent
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(2.0)
    buf.every_seal = False  # polling stops: nothing lands during the last seals
    stop.set()
    await asyncio.wait_for(task, 10)
    assert buf.unbatched == 0
    assert buf.pending() == []
    # a seal when the oldest reading is 0.2 s old: at most ~10 in 2 s, and one at shutdown
    assert buf.seals <= 2.0 / 0.2 + 3, (buf.seals, live.polls, buf.late)
    sent = _values_by_meter(pub)
    assert sent["live"] == [float(i) for i in range(1, live.polls + 1)]
    assert sent["late"] == [float(i) for i in range(buf.late)]


def _values_by_meter(pub: FakePublisher) -> dict[str, list[float]]:
    """Every value published, per meter, sorted; a batch sent twice counts once."""
    seen: set[int] = set()
    out: dict[str, list[float]] = {}
    for topic, payload, _ in pub.messages:
        if topic.endswith("/readings"):
            b = decode_batch(payload, topic_device=DEVICE, now_ms=to_ms(SystemClock().now()))
            if b.seq not in seen:
                seen.add(b.seq)
                for s in b.series:
                    out.setdefault(s.meter, []).extend(s.values.tolist())
    return {m: sorted(vs) for m, vs in out.items()}
