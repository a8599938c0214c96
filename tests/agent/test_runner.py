"""The runner's pipeline on fakes: polling, batching by size and age, acks, reconnects, shutdown."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime

from agent.buffer_fake import MemoryBuffer
from agent.clock import FakeClock, SystemClock, to_ms
from agent.config import AgentConfig, parse_config
from agent.errors import DiskFullError, SourceError
from agent.protocol import Kind, Reading, decode_batch
from agent.publisher_fake import FakePublisher
from agent.runner import Agent

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Counter:
    """A source that returns one reading per poll with an increasing value."""

    def __init__(self, name: str = "c", interval_s: float = 0.01, fail_every: int = 0) -> None:
        self._name, self._interval = name, interval_s
        self.polls = 0
        self._fail_every = fail_every

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval

    async def read(self, now: datetime) -> Sequence[Reading]:
        self.polls += 1
        if self._fail_every and self.polls % self._fail_every == 0:
            raise SourceError("glitch", source=self._name)
        return [Reading(self._name, "count", "1", Kind.CUMULATIVE,
                        to_ms(now) + self.polls, float(self.polls))]

    async def close(self) -> None:
        return None


def cfg(**batch: object) -> AgentConfig:
    return parse_config({
        "device_id": "dev-r", "status_interval_s": 3600, "shutdown_timeout_s": 5,
        "broker": {"reconnect_min_s": 0.01, "reconnect_max_s": 0.05},
        "batch": {"max_readings": 10, "max_age_s": 0.05, "in_flight": 2, **batch},
    })


def batches(pub: FakePublisher) -> list[tuple[int, list[float]]]:
    out = []
    for topic, payload, _ in pub.messages:
        if topic.endswith("/readings"):
            b = decode_batch(payload, topic_device="dev-r", now_ms=to_ms(START) + 10**9)
            out.append((b.seq, [v for s in b.series for v in s.values.tolist()]))
    return out


async def run_for(agent: Agent, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_every_polled_reading_is_published_once_and_acked() -> None:
    """Readings flow source -> buffer -> batches; acked batches leave the buffer."""
    buf, pub, src = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(), Counter()
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[src], clock=FakeClock(START))
    await run_for(agent, 0.5)
    values = [v for _, vs in batches(pub) for v in vs]
    assert sorted(values) == [float(i) for i in range(1, src.polls + 1)]
    assert len(values) == len(set(values))
    assert buf.pending() == []
    assert buf.unbatched == 0


async def test_full_batches_are_sealed_at_max_readings() -> None:
    """A backlog is cut into batches of exactly max_readings (the last may be shorter)."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher()
    await buf.append([Reading("m", "x", "1", Kind.GAUGE, to_ms(START) + i, i) for i in range(95)])
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    await run_for(agent, 0.3)
    sizes = [len(vs) for _, vs in batches(pub)]
    assert sizes == [10] * 9 + [5]
    seqs = [s for s, _ in batches(pub)]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


async def test_partial_batch_waits_for_max_age() -> None:
    """Fewer than max_readings readings are published only once the oldest is max_age_s old.

    Real time: the batcher sleeps until the oldest reading is due, on the event loop's clock."""
    clock = SystemClock()
    buf, pub = MemoryBuffer(now_ms=to_ms(clock.now())), FakePublisher()
    agent = Agent(cfg(max_age_s=1.0), buffer=buf, publisher=pub,
                  sources=[Counter(interval_s=100)], clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0.6)
    assert batches(pub) == []
    for _ in range(50):  # due at 1.0 s; a loaded machine may take a little longer
        await asyncio.sleep(0.1)
        if batches(pub):
            break
    assert [vs for _, vs in batches(pub)] == [[1.0]]
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_in_flight_window_is_bounded() -> None:
    """With acks withheld, no more than batch.in_flight batches are outstanding."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_acks=True)
    await buf.append([Reading("m", "x", "1", Kind.GAUGE, to_ms(START) + i, i) for i in range(100)])
    agent = Agent(cfg(in_flight=3), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0.3)
    assert len(batches(pub)) == 3
    pub.release()
    await asyncio.sleep(0.3)
    assert len(batches(pub)) == 6
    pub.hold_acks = False
    pub.release()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert buf.pending() == []


async def test_unacked_batches_are_resent_identically_after_reconnect() -> None:
    """A batch whose PUBACK never came is re-sent with the same seq and the same payload."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_acks=True)
    await buf.append([Reading("m", "x", "1", Kind.GAUGE, to_ms(START) + i, i) for i in range(10)])
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0.2)
    first = list(pub.messages)
    await pub.close()  # in-flight futures fail, connection gone
    pub.hold_acks = False
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 10)
    sent = [p for t, p, _ in pub.messages if t.endswith("/readings")]
    assert len(sent) == 2
    assert sent[0] == sent[1] == next(p for t, p, _ in first if
                                                       t.endswith("/readings"))
    assert buf.pending() == []


async def test_reconnect_backs_off_with_jitter() -> None:
    """While the broker refuses, connect attempts are spaced by growing, jittered delays."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher()
    pub.refuse = True
    config = parse_config({"device_id": "dev-r", "status_interval_s": 3600,
                           "shutdown_timeout_s": 0.1,
                           "broker": {"reconnect_min_s": 0.02, "reconnect_max_s": 0.2}})
    agent = Agent(config, buffer=buf, publisher=pub, sources=[], clock=FakeClock(START),
                  rng=random.Random(1))
    await run_for(agent, 1.0)
    # full jitter with a 0.2 s cap: between 5 (all at cap) and ~1.0/0.02 attempts
    assert 5 <= pub.connect_calls < 50
    assert agent.health.last_error is not None
    assert "unreachable" in agent.health.last_error


async def test_broker_initiated_disconnect_reconnects() -> None:
    """After the broker drops the link the agent reconnects and keeps publishing."""
    buf, pub, src = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(), Counter()
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[src], clock=FakeClock(START))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0.2)
    pub.go_down()
    await asyncio.sleep(0.4)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert pub.connect_calls >= 2
    assert agent.health.connects >= 2
    values = sorted(v for _, vs in batches(pub) for v in vs)
    assert set(values) == {float(i) for i in range(1, src.polls + 1)}


async def test_source_errors_are_counted_and_polling_goes_on() -> None:
    """A failing poll is counted in status and does not stop the source's loop."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher()
    src = Counter(fail_every=3)
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[src], clock=FakeClock(START))
    await run_for(agent, 0.3)
    assert agent.health.source_errors == src.polls // 3
    assert src.polls > 6
    assert agent.health.last_error is not None
    assert "glitch" in agent.health.last_error


async def test_shutdown_flushes_and_announces_offline() -> None:
    """On stop the remaining readings are sealed and published, then an offline status sent."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher()
    agent = Agent(cfg(max_age_s=3600), buffer=buf, publisher=pub,
                  sources=[Counter(interval_s=0.02)], clock=FakeClock(START))
    await run_for(agent, 0.2)
    assert buf.unbatched == 0
    assert buf.pending() == []
    assert buf.closed
    last_topic, last_payload, retained = pub.messages[-1]
    assert last_topic == "tally/v1/dev-r/status"
    assert retained
    assert b'"offline"' in last_payload


class FullDisk(MemoryBuffer):
    """A memory buffer whose appends fail with DiskFullError while ``full`` is set."""

    full = True

    async def append(self, readings: Sequence[Reading]) -> None:
        if self.full:
            raise DiskFullError("database or disk is full")
        await super().append(readings)


async def test_disk_full_is_reported_and_recovers_without_loss() -> None:
    """While the disk is full readings wait in memory and status says so; then all arrive."""
    buf, pub, src = FullDisk(now_ms=to_ms(START)), FakePublisher(), Counter()
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[src], clock=FakeClock(START))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0.3)
    assert agent.health.disk_full
    assert batches(pub) == []
    buf.full = False
    for _ in range(100):  # failed appends back off (at most 2 s apart): allow for it
        if not agent.health.disk_full:
            break
        await asyncio.sleep(0.05)
    assert not agent.health.disk_full
    stop.set()
    await asyncio.wait_for(task, 10)
    values = sorted(v for _, vs in batches(pub) for v in vs)
    assert values == [float(i) for i in range(1, src.polls + 1)]
    assert agent.health.lost_readings == 0
