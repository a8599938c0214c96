"""End-to-end acknowledgement in the agent: a batch is forgotten only when the collector says so.

PUBACK only marks a batch sent; the fake publisher plays the collector (``hold_confirms``
withholds its acknowledgements, ``deliver`` hands over any acknowledgement a test writes).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from agent.buffer import SqliteBuffer
from agent.buffer_fake import MemoryBuffer
from agent.clock import FakeClock, to_ms
from agent.config import AgentConfig, parse_config
from agent.protocol import Kind, Reading, decode_batch
from agent.protocol_ack import Ack, ack_topic, encode_ack
from agent.publisher_fake import FakePublisher
from agent.runner import Agent
from agent.status import online_status
from tests.agent.test_runner import START

DEVICE = "dev-r"
ACK_TOPIC = ack_topic(DEVICE)


def cfg(*, shutdown_timeout_s: float = 5, **batch: object) -> AgentConfig:
    return parse_config({
        "device_id": DEVICE, "status_interval_s": 3600, "shutdown_timeout_s": shutdown_timeout_s,
        "broker": {"reconnect_min_s": 0.01, "reconnect_max_s": 0.05},
        "batch": {"max_readings": 10, "max_age_s": 0.05, "in_flight": 2, **batch},
    })


def readings(n: int) -> list[Reading]:
    return [Reading("m", "x", "1", Kind.GAUGE, to_ms(START) + i, i) for i in range(n)]


def sent_seqs(pub: FakePublisher) -> list[int]:
    return [decode_batch(p, topic_device=DEVICE, now_ms=to_ms(START) + 10**9).seq
            for t, p, _ in pub.messages if t.endswith("/readings")]


async def start(agent: Agent) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(agent.run(stop))


async def test_puback_alone_keeps_the_batch_and_the_ack_deletes_it() -> None:
    """Without the collector's acknowledgement a PUBACKed batch stays; with it, it goes."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_confirms=True)
    await buf.append(readings(30))
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    seqs = buf.pending()
    assert len(seqs) == 3
    assert sorted(buf.sent()) == seqs  # marked sent, durably
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seqs[0], ((seqs[0], seqs[1]),))))
    await asyncio.sleep(0.2)
    assert buf.pending() == [seqs[2]]
    assert agent.health.confirmed_batches == 2
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seqs[2], ((seqs[2], seqs[2]),))))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert buf.pending() == []


async def test_unconfirmed_batches_are_resent_after_the_timeout() -> None:
    """A batch not confirmed within confirm_timeout_s is sent again, same seq and readings."""
    clock = FakeClock(START)
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_confirms=True)
    await buf.append(readings(10))
    agent = Agent(cfg(confirm_timeout_s=5), buffer=buf, publisher=pub, sources=[], clock=clock)
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    assert len(sent_seqs(pub)) == 1
    clock.advance(6)
    await asyncio.sleep(1.3)
    seqs = sent_seqs(pub)
    assert len(seqs) == 2
    assert seqs[0] == seqs[1]
    assert agent.health.resent_batches == 1
    pub.hold_confirms = False
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seqs[0], ((seqs[0], seqs[0]),))))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert buf.pending() == []


async def test_unconfirmed_batches_are_resent_after_a_reconnect() -> None:
    """After any reconnect every sent-but-unconfirmed batch is sent again."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_confirms=True)
    await buf.append(readings(20))
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    first = sent_seqs(pub)
    assert len(first) == 2
    pub.go_down()
    await asyncio.sleep(0.4)
    assert sorted(sent_seqs(pub)) == sorted(first * 2)
    pub.hold_confirms = False
    for seq in first:
        pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seq, ((seq, seq),))))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert buf.pending() == []


async def test_the_window_bounds_sent_but_unconfirmed_batches() -> None:
    """A dead collector does not make the agent flood the broker: at most ``window`` batches."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_confirms=True)
    await buf.append(readings(200))
    agent = Agent(cfg(in_flight=2, window=4), buffer=buf, publisher=pub, sources=[],
                  clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.5)
    assert len(sent_seqs(pub)) == 4
    assert len(buf.pending()) <= 6  # window + in_flight sealed; the rest waits unbatched
    seqs = sent_seqs(pub)
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seqs[0], ((seqs[0], seqs[-1]),))))
    await asyncio.sleep(0.3)
    assert len(sent_seqs(pub)) == 8
    pub.hold_confirms = False
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, 0, ((0, 2**62),))))
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_dead_lettered_batch_is_forgotten_and_reported() -> None:
    """A batch the collector dead-lettered is not re-sent forever; the status says so."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_confirms=True)
    await buf.append(readings(10))
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    (seq,) = buf.pending()
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seq, (), (), ((seq, "clock is wrong"),))))
    await asyncio.sleep(0.2)
    assert buf.pending() == []
    assert agent.health.dead_lettered_batches == 1
    assert "clock is wrong" in (agent.health.last_error or "")
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_conflicting_batch_is_forgotten_and_reported_as_a_conflict() -> None:
    """A batch whose seq the collector already stored with other readings is forgotten (re-sending
    would only conflict again), counted as a conflict (not a duplicate) and reported."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_confirms=True)
    await buf.append(readings(10))
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    (seq,) = buf.pending()
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seq, ((seq, seq),), conflict=((seq, seq),))))
    await asyncio.sleep(0.2)
    assert buf.pending() == []
    assert agent.health.conflicting_batches == 1
    assert agent.health.duplicate_batches == 0
    assert "conflicts" in (agent.health.last_error or "")
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_acknowledgements_for_other_seqs_or_devices_change_nothing() -> None:
    """An acknowledgement naming other seqs, or a malformed one, deletes nothing."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_confirms=True)
    await buf.append(readings(10))
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    (seq,) = buf.pending()
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seq + 1, ((seq + 1, seq + 5),))))
    pub.deliver(ACK_TOPIC, encode_ack(Ack("someone-else", seq, ((seq, seq),))))
    pub.deliver(ACK_TOPIC, b"{not json")
    await asyncio.sleep(0.2)
    assert buf.pending() == [seq]
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, seq, ((seq, seq),))))
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_sent_unconfirmed_state_survives_a_restart(tmp_path: Path) -> None:
    """The "sent, unconfirmed" mark is kept in SQLite: after a restart the status still shows
    the batch as unconfirmed since its first send, and it is sent again."""
    path = tmp_path / "buf.db"
    buf = await SqliteBuffer.open(path, device_id=DEVICE, now_ms=to_ms(START))
    await buf.append(readings(10))
    pub = FakePublisher(hold_confirms=True)
    agent = Agent(cfg(shutdown_timeout_s=0.2), buffer=buf, publisher=pub, sources=[],
                  clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 10)
    (seq,) = sent_seqs(pub)

    clock = FakeClock(START)
    clock.advance(90)
    buf = await SqliteBuffer.open(path, device_id=DEVICE, now_ms=to_ms(clock.now()))
    assert buf.sent() == {seq: to_ms(START)}
    stats = await buf.stats()
    assert stats.unconfirmed_batches == 1
    doc = json.loads(online_status(device=DEVICE, version="t", now_ms=to_ms(clock.now()),
                                   stats=stats, health=agent.health))
    assert doc["buffer"]["unconfirmed_batches"] == 1
    assert doc["buffer"]["oldest_unconfirmed_age_s"] == 90.0
    pub2 = FakePublisher()
    agent2 = Agent(cfg(), buffer=buf, publisher=pub2, sources=[], clock=clock)
    stop, task = await start(agent2)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert sent_seqs(pub2) == [seq]
    buf = await SqliteBuffer.open(path, device_id=DEVICE, now_ms=to_ms(clock.now()))
    assert buf.pending() == []
    assert buf.sent() == {}
    await buf.close()


async def test_broker_mode_deletes_on_puback() -> None:
    """``confirm = "broker"`` keeps the old contract: deleted on PUBACK, nothing awaited."""
    buf, pub = MemoryBuffer(now_ms=to_ms(START)), FakePublisher(hold_confirms=True)
    await buf.append(readings(30))
    agent = Agent(cfg(confirm="broker"), buffer=buf, publisher=pub, sources=[],
                  clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    assert buf.pending() == []
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_batches_dropped_unconfirmed_are_reported_as_skipped_until_recorded() -> None:
    """drop_oldest on a full buffer drops a sent-but-unconfirmed batch; its seq travels in the
    next batch's ``skipped`` until the collector confirms that batch."""
    from agent.buffer_port import BufferLimits, FullPolicy  # noqa: PLC0415

    buf = MemoryBuffer(now_ms=to_ms(START),
                       limits=BufferLimits(max_readings=20, policy=FullPolicy.DROP_OLDEST))
    pub = FakePublisher(hold_confirms=True)
    await buf.append(readings(20))
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop, task = await start(agent)
    await asyncio.sleep(0.3)
    first, second = sent_seqs(pub)
    await buf.append(readings(10))  # over the limit: the oldest batch goes
    assert buf.skipped() == [first]
    await asyncio.sleep(0.3)
    last = [decode_batch(p, topic_device=DEVICE, now_ms=to_ms(START) + 10**9)
            for t, p, _ in pub.messages if t.endswith("/readings")][-1]
    assert last.seq not in (first, second)
    assert last.skipped == ((first, first),)
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, last.seq, ((last.seq, last.seq),))))
    await asyncio.sleep(0.2)
    assert buf.skipped() == []
    pub.hold_confirms = False
    pub.deliver(ACK_TOPIC, encode_ack(Ack(DEVICE, second, ((second, second),))))
    stop.set()
    await asyncio.wait_for(task, 10)
