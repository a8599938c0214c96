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
from collections.abc import Sequence
from dataclasses import dataclass

from agent.clock import Clock
from collector.errors import StorageError, StorageUnavailable

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

    max_messages: int = 500
    max_wait_s: float = 0.05
    idle_s: float = 0.01  # flush early when no message arrived for this long
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0


@dataclass(slots=True)
class WriterStats:
    """Counters for health and monitoring (a snapshot copy is handed out)."""

    flushes: int = 0
    batches: int = 0
    duplicates: int = 0
    readings: int = 0
    dead_letters: int = 0
    retries: int = 0
    pending: int = 0
    oldest_pending_ms: int | None = None
    last_flush_ms: int | None = None
    last_error: str | None = None
    storage_ok: bool = True


class IngestWriter:
    """Thread-safe ``submit`` (from the network thread); ``run`` loops in the writer thread."""

    def __init__(
        self,
        store: IngestStore,
        acknowledger: Acknowledger,
        clock: Clock,
        *,
        decoders: DecoderTable | None = None,
        settings: WriterSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._ack = acknowledger
        self._clock = clock
        self._decoders = decoders or DecoderTable()
        self._settings = settings or WriterSettings()
        self._backoff = Backoff(
            self._settings.retry_initial_s, self._settings.retry_max_s, rng
        )
        self._queue: queue.SimpleQueue[InboundMessage] = queue.SimpleQueue()
        self._stats = WriterStats()
        self._lock = threading.Lock()

    def submit(self, message: InboundMessage) -> None:
        self._queue.put(message)

    def stats(self) -> WriterStats:
        with self._lock:
            snap = WriterStats(**{k: getattr(self._stats, k) for k in WriterStats.__slots__})
        snap.pending += self._queue.qsize()
        return snap

    def run(self, stop: threading.Event) -> None:
        """Flush until ``stop`` is set, then flush what was received and return.

        When storage fails while stopping, the messages stay unacknowledged: the broker keeps
        them in the persistent session and redelivers them to the next collector.
        """
        pending: list[InboundMessage] = []
        while True:
            if not pending:
                try:
                    pending.append(self._queue.get(timeout=0.1))
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
            self._fill(pending, stop)
            self._set_pending(pending)
            if self._flush_and_ack(pending):
                pending = []
                self._set_pending(pending)
                continue
            if stop.is_set():
                _log.warning("stopping with %d unacknowledged messages", len(pending))
                return
            with self._lock:
                self._stats.retries += 1
            stop.wait(self._backoff.next_delay())

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

    def _flush_and_ack(self, pending: list[InboundMessage]) -> bool:
        """Store and acknowledge ``pending``; False (nothing acknowledged) when storage failed."""
        try:
            outcome = self._store.write(plan_flush(pending, self._decoders))
        except StorageUnavailable as exc:
            self._failed(exc)
            return False
        except StorageError as exc:
            _log.error("flush of %d messages failed, isolating: %s", len(pending), exc)
            return self._isolate(pending)
        self._done(pending, outcome)
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
                    outcome = self._store.write(FlushPlan(dead_letters=(letter,)))
            except StorageError as exc:
                self._failed(exc)
                return False
            self._done([msg], outcome)
            pending.pop(0)
        return True

    def _failed(self, exc: StorageError) -> None:
        _log.warning("storage unavailable, will retry: %s", exc)
        with self._lock:
            self._stats.last_error = str(exc)[:500]
            self._stats.storage_ok = False

    def _done(self, messages: Sequence[InboundMessage], outcome: FlushOutcome) -> None:
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

    def _set_pending(self, pending: list[InboundMessage]) -> None:
        with self._lock:
            self._stats.pending = len(pending)
            self._stats.oldest_pending_ms = (
                min(m.received_ms for m in pending) if pending else None
            )
