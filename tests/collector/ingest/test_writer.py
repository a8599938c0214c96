"""The ingest writer with the in-memory store: acknowledge only what is stored, retry outages."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest

from agent.clock import SystemClock
from agent.protocol import encode_batch, readings_topic
from collector.errors import StorageConflict, StorageError
from collector.ingest.messages import FlushOutcome, FlushPlan, InboundMessage
from collector.ingest.ports import InMemoryIngestStore, RecordingAcknowledger
from collector.ingest.writer import IngestWriter, WriterSettings
from tests.collector.ingest.synthetic import make_batch, wait_until

FAST = WriterSettings(max_messages=50, max_wait_s=0.02, idle_s=0.005, retry_initial_s=0.01,
                      retry_max_s=0.05)


def _msg(seq: int, device: str = "dev-w") -> InboundMessage:
    return InboundMessage(readings_topic(device), encode_batch(make_batch(device, seq)), seq + 1,
                          1, 1_764_000_000_000)


class _Running:
    def __init__(self, writer: IngestWriter) -> None:
        self.writer = writer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=writer.run, args=(self.stop,))
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def store() -> InMemoryIngestStore:
    return InMemoryIngestStore()


@pytest.fixture
def acks() -> RecordingAcknowledger:
    return RecordingAcknowledger()


@pytest.fixture
def running(store: InMemoryIngestStore, acks: RecordingAcknowledger) -> Iterator[_Running]:
    r = _Running(IngestWriter(store, acks, SystemClock(), settings=FAST, rng=random.Random(0)))
    yield r
    r.close()


def test_messages_are_acknowledged_after_they_are_stored(
    store: InMemoryIngestStore, acks: RecordingAcknowledger
) -> None:
    """No message id is acknowledged before the write that holds it returned."""
    acked_at_write: list[int] = []

    class Spy(InMemoryIngestStore):
        def write(self, plan: FlushPlan) -> FlushOutcome:
            acked_at_write.append(len(acks.acked))
            return super().write(plan)

    spy = Spy()
    r = _Running(IngestWriter(spy, acks, SystemClock(), settings=FAST))
    try:
        for i in range(20):
            r.writer.submit(_msg(i))
        assert wait_until(lambda: len(acks.acked) == 20, 5)
    finally:
        r.close()
    assert len(spy.batch_keys) == 20
    assert acked_at_write[0] == 0


def test_nothing_is_acknowledged_while_storage_is_unavailable(
    running: _Running, store: InMemoryIngestStore, acks: RecordingAcknowledger
) -> None:
    """During an outage messages are kept unacknowledged, then stored once and acknowledged."""
    store.available = False
    for i in range(10):
        running.writer.submit(_msg(i))
    assert wait_until(lambda: running.writer.stats().retries >= 3, 5)
    assert acks.acked == []
    assert running.writer.stats().storage_ok is False
    store.available = True
    assert wait_until(lambda: sorted(acks.acked) == list(range(1, 11)), 5)
    assert len(store.batch_keys) == 10


def test_a_flush_aborted_by_a_deadlock_is_retried_and_counted(
    acks: RecordingAcknowledger,
) -> None:
    """A flush the database aborted to break a deadlock is stored on the next try, counted as
    a deadlock retry, and does not mark storage as failing."""
    aborted: list[int] = []

    class Crossed(InMemoryIngestStore):
        def write(self, plan: FlushPlan) -> FlushOutcome:
            if not aborted:
                aborted.append(1)
                raise StorageConflict("ingest flush: transaction aborted (40P01: deadlock)")
            return super().write(plan)

    crossed = Crossed()
    r = _Running(IngestWriter(crossed, acks, SystemClock(), settings=FAST))
    try:
        for i in range(5):
            r.writer.submit(_msg(i))
        assert wait_until(lambda: len(acks.acked) == 5, 5)
        stats = r.writer.stats()
    finally:
        r.close()
    assert (stats.retries, stats.deadlock_retries, stats.storage_ok) == (1, 1, True)
    assert len(crossed.batch_keys) == 5


def test_a_message_the_store_rejects_becomes_a_dead_letter(
    acks: RecordingAcknowledger,
) -> None:
    """A message that makes the store fail (not an outage) is isolated and dead-lettered."""

    class Picky(InMemoryIngestStore):
        def write(self, plan: FlushPlan) -> FlushOutcome:
            if any(b.batch.seq == 3 for b in plan.batches):
                raise StorageError("value out of range")
            return super().write(plan)

    store = Picky()
    r = _Running(IngestWriter(store, acks, SystemClock(), settings=FAST))
    try:
        for i in range(6):
            r.writer.submit(_msg(i))
        assert wait_until(lambda: len(acks.acked) == 6, 5)
    finally:
        r.close()
    assert sorted(k[1] for k in store.batch_keys) == [0, 1, 2, 4, 5]
    assert [d.reason for d in store.dead_letters] == ["storage: value out of range"]


def test_stop_flushes_what_was_received(
    store: InMemoryIngestStore, acks: RecordingAcknowledger
) -> None:
    """Messages queued before stop are stored and acknowledged before run returns."""
    w = IngestWriter(store, acks, SystemClock(), settings=FAST)
    for i in range(30):
        w.submit(_msg(i))
    stop = threading.Event()
    stop.set()
    w.run(stop)
    assert len(acks.acked) == 30
    assert len(store.batch_keys) == 30


def test_flushes_are_bounded_by_max_messages(
    store: InMemoryIngestStore, acks: RecordingAcknowledger
) -> None:
    """120 queued messages with max_messages=50 take three writes."""
    w = IngestWriter(store, acks, SystemClock(), settings=FAST)
    for i in range(120):
        w.submit(_msg(i))
    stop = threading.Event()
    stop.set()
    w.run(stop)
    assert store.writes == 3
