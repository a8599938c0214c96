"""The ingest writer: drains received messages into flushes, stores each in one transaction,
then acknowledges its messages. It is also the supervisor of the store: when the database is
unavailable nothing is acknowledged, the messages are kept and the flush is retried with
backoff; the broker redelivers anything unacknowledged if the process dies, and batch
deduplication makes the redelivery harmless.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.clock import Clock
from collector.errors import StorageConflict, StorageError, StorageUnavailable

from .acks import build_acks
from .backoff import Backoff
from .decoders import DecoderTable
from .messages import DeadLetter, FlushOutcome, FlushPlan, InboundMessage
from .planning import plan_flush
from .ports import Acknowledger, IngestStore

__all__ = ["IngestWriter", "WriterSettings", "WriterStats"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """Flush sizing and retry timing."""

    max_messages: int = 100
    max_wait_s: float = 0.05
    idle_s: float = 0.01  # flush early when no message arrived for this long
    retry_initial_s: float = 0.2
    retry_max_s: float = 1.0  # resume within ~1 s of the database answering again


@dataclass(slots=True, eq=False)
class _Flush:
    """Messages taken from the queue together, and their decoded plan."""

    messages: list[InboundMessage]
    plan: FlushPlan | None = None


@dataclass(slots=True)
class WriterStats:
    """Counters for health and monitoring (a snapshot copy is handed out)."""

    flushes: int = 0
    batches: int = 0
    duplicates: int = 0
    readings: int = 0
    dead_letters: int = 0
    retries: int = 0
    deadlock_retries: int = 0  # of the retries: the database aborted the flush (deadlock)
    pending: int = 0
    oldest_pending_ms: int | None = None
    last_flush_ms: int | None = None
    flush_seconds_total: float = 0.0  # time spent in store writes of successful flushes
    last_flush_s: float | None = None
    last_error: str | None = None
    storage_ok: bool = True


class IngestWriter:
    """Thread-safe ``submit`` (from the network thread); ``run`` loops in the writer thread.

    Two stages overlap: the calling thread drains and decodes the next flush while a store
    thread writes the previous one (the database works while Python decodes). At most one
    decoded flush waits between them, so a slow or unavailable database holds back decoding.
    """

    def __init__(
        self,
        store: IngestStore,
        acknowledger: Acknowledger,
        clock: Clock,
        *,
        decoders: DecoderTable | None = None,
        settings: WriterSettings | None = None,
        rng: random.Random | None = None,
        on_stored: Callable[[FlushOutcome], None] | None = None,
    ) -> None:
        self._store = store
        self._on_stored = on_stored
        self._ack = acknowledger
        self._clock = clock
        self._decoders = decoders or DecoderTable()
        self._settings = settings or WriterSettings()
        self._backoff = Backoff(
            self._settings.retry_initial_s, self._settings.retry_max_s, rng
        )
        self._queue: queue.SimpleQueue[InboundMessage] = queue.SimpleQueue()
        self._handoff: queue.Queue[_Flush | None] = queue.Queue(maxsize=1)
        self._stats = WriterStats()
        self._lock = threading.Lock()
        self._in_progress: dict[int, tuple[int, int]] = {}  # id → (messages, oldest received)

    def submit(self, message: InboundMessage) -> None:
        self._queue.put(message)

    def stats(self) -> WriterStats:
        with self._lock:
            snap = WriterStats(**{k: getattr(self._stats, k) for k in WriterStats.__slots__})
            groups = list(self._in_progress.values())
        snap.pending = sum(n for n, _ in groups) + self._queue.qsize()
        snap.oldest_pending_ms = min((t for _, t in groups), default=None)
        return snap

    def run(self, stop: threading.Event) -> None:
        """Flush until ``stop`` is set, then flush what was received and return.

        When storage fails while stopping, the messages stay unacknowledged: the broker keeps
        them in the persistent session and redelivers them to the next collector.
        """
        storer = threading.Thread(target=self._store_loop, args=(stop,), name="ingest-store")
        storer.start()
        try:
            while True:
                try:
                    first = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                pending = [first]
                self._fill(pending, stop)
                flush = _Flush(pending)
                self._track(flush)
                flush.plan = plan_flush(pending, self._decoders)
                self._handoff.put(flush)
        finally:
            self._handoff.put(None)
            storer.join()

    def _store_loop(self, stop: threading.Event) -> None:
        while (flush := self._handoff.get()) is not None:
            while not self._flush_and_ack(flush):
                if stop.is_set():
                    _log.warning("stopping with %d unacknowledged messages", len(flush.messages))
                    self._untrack(flush)
                    break
                with self._lock:
                    self._stats.retries += 1
                stop.wait(self._backoff.next_delay())

    def _track(self, flush: _Flush) -> None:
        oldest = min(m.received_ms for m in flush.messages)
        with self._lock:
            self._in_progress[id(flush)] = (len(flush.messages), oldest)

    def _untrack(self, flush: _Flush) -> None:
        with self._lock:
            self._in_progress.pop(id(flush), None)

    def _fill(self, pending: list[InboundMessage], stop: threading.Event) -> None:
        s = self._settings
        deadline = self._clock.monotonic() + s.max_wait_s
        while len(pending) < s.max_messages:
            try:
                while len(pending) < s.max_messages:
                    pending.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            left = deadline - self._clock.monotonic()
            if left <= 0 or len(pending) >= s.max_messages or stop.is_set():
                return
            try:
                pending.append(self._queue.get(timeout=min(left, s.idle_s)))
            except queue.Empty:
                return

    def _flush_and_ack(self, flush: _Flush) -> bool:
        """Store and acknowledge a flush; False (nothing acknowledged) when storage failed."""
        assert flush.plan is not None
        started = self._clock.monotonic()
        try:
            outcome = self._store.write(flush.plan)
            took = self._clock.monotonic() - started
            with self._lock:
                self._stats.flush_seconds_total += took
                self._stats.last_flush_s = took
        except StorageUnavailable as exc:
            self._failed(exc)
            return False
        except StorageError as exc:
            _log.error("flush of %d messages failed, isolating: %s", len(flush.messages), exc)
            if not self._isolate(flush.messages):
                flush.plan = plan_flush(flush.messages, self._decoders)  # what is left
                return False
            self._untrack(flush)
            return True
        self._done(flush.messages, outcome, flush.plan)
        self._untrack(flush)
        return True

    def _isolate(self, pending: list[InboundMessage]) -> bool:
        """Store messages one at a time; one that the store rejects becomes a dead letter."""
        while pending:
            msg = pending[0]
            plan = plan_flush([msg], self._decoders)
            try:
                try:
                    outcome = self._store.write(plan)
                except StorageUnavailable:
                    raise
                except StorageError as exc:
                    reason = f"storage: {exc}"[:500]
                    letter = DeadLetter(msg.topic, msg.payload, reason, None, msg.received_ms)
                    plan = FlushPlan(dead_letters=(letter,))
                    outcome = self._store.write(plan)
            except StorageError as exc:
                self._failed(exc)
                return False
            self._done([msg], outcome, plan)
            pending.pop(0)
        return True

    def _failed(self, exc: StorageError) -> None:
        if isinstance(exc, StorageConflict):  # the database answered: storage is fine
            _log.warning("flush aborted by the database, will retry: %s", exc)
            with self._lock:
                self._stats.deadlock_retries += 1
            return
        _log.warning("storage unavailable, will retry: %s", exc)
        with self._lock:
            self._stats.last_error = str(exc)[:500]
            self._stats.storage_ok = False

    def _done(
        self, messages: Sequence[InboundMessage], outcome: FlushOutcome, plan: FlushPlan
    ) -> None:
        """After the commit: tell the devices (end to end), then the broker (PUBACK), then
        ``on_stored`` (e.g. the usage refresh, which derives what was just committed)."""
        acks = build_acks(plan, outcome)
        if acks:
            self._ack.confirm(acks)
        self._ack.ack(messages)
        self._backoff.reset()
        with self._lock:
            st = self._stats
            st.flushes += 1
            st.batches += outcome.new_batches
            st.duplicates += outcome.duplicate_batches
            st.readings += outcome.readings
            st.dead_letters += outcome.dead_letters
            st.last_flush_ms = int(self._clock.now().timestamp() * 1000)
            st.storage_ok = True
        if self._on_stored is not None:
            self._on_stored(outcome)
