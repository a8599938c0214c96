"""Composition root and supervisor: poll sources, seal batches, publish, reconnect, shut down.

Task layout (one asyncio loop): a poll loop per source appends readings to the buffer; the
batcher seals up to ``batch.max_readings`` readings per batch once that many wait or the oldest
has waited ``batch.max_age_s``; the publish loop sends sealed batches in seq order with up to
``batch.in_flight`` awaiting PUBACK and at most ``batch.window`` sent but unconfirmed. PUBACK
only marks a batch sent (durably, in the buffer); it is deleted when the collector's
acknowledgement on ``tally/v1/<device>/ack`` says it is committed (or dead-lettered), and sent
again when unconfirmed after ``batch.confirm_timeout_s`` or after any reconnect. The supervisor
(re)connects with exponential backoff and full jitter, also after a broker-initiated
disconnect. ``stop`` (SIGTERM/SIGINT) ends polling, seals what is left, waits up to
``shutdown_timeout_s`` for confirmations, publishes the offline status and closes the DB.
Whatever was not confirmed stays in the buffer and is re-sent, identical, on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import __version__
from agent.backoff import backoff_delay
from agent.buffer import SqliteBuffer
from agent.buffer_port import ReadingBuffer, SealedBatch
from agent.clock import Clock, SystemClock, to_ms
from agent.config import AgentConfig
from agent.errors import (
    AgentError,
    BufferError_,
    BufferFullError,
    DiskFullError,
    ProtocolError,
    PublishError,
)
from agent.private_files import write_private
from agent.protocol import (
    MAX_SKIPPED_RANGES,
    Batch,
    Reading,
    config_topic,
    encode_batch,
    readings_topic,
    status_topic,
)
from agent.protocol_ack import Outcome, ack_topic, decode_ack, seq_ranges
from agent.publisher import MqttPublisher
from agent.publisher_port import Publisher
from agent.redact import redact_url
from agent.remote_config import applied_path, load_applied, parse_remote_config
from agent.sources.base import Source
from agent.sources.factory import build_sources
from agent.status import Health, offline_status, online_status

log = logging.getLogger(__name__)
_CARRY_MAX = 10_000  # readings a poll loop holds in memory while the disk is full
_STABLE_S = 30.0  # a connection that lasted this long resets the backoff
_IDLE_S = 5.0  # the publish loop looks around at least this often, woken or not


class Agent:
    """Runs the pipeline for one device until ``stop`` is set."""

    def __init__(
        self, cfg: AgentConfig, *, buffer: ReadingBuffer, publisher: Publisher,
        sources: Sequence[Source], clock: Clock, rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.buffer = buffer
        self.publisher = publisher
        self.sources = list(sources)
        self.clock = clock
        self.health = Health()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._topic = readings_topic(cfg.device_id)
        self._status_topic = status_topic(cfg.device_id)
        self._sealed = asyncio.Event()
        self._appended = asyncio.Event()
        self._polling_done = asyncio.Event()
        # Readings with an id above _live_from are the live lane: sealed and sent before the
        # backlog (readings at or below it: what the buffer held at start, or what piled up
        # while batches could not be sealed), so fresh readings never wait behind a drain.
        self._live_from = buffer.last_id
        self._live: set[int] = set()  # seqs of pending batches sealed from the live lane
        self._oldest_mono: float | None = None  # when the live lane's oldest reading came
        self._in_flight: dict[int, tuple[asyncio.Future[None], int]] = {}  # awaiting PUBACK
        self._unconfirmed: dict[int, float] = {}  # PUBACKed on this connection -> when
        self._ready: dict[int, SealedBatch] = {}  # sealed this run: sent without re-reading
        self._to_mark: list[int] = []  # PUBACKed, to be recorded as sent in the buffer
        self._to_ack: list[int] = []  # confirmed, waiting for the acker to delete them
        self._confirmed: set[int] = set()  # confirmed and not yet deleted: never re-send these
        self._ack_wake = asyncio.Event()
        self.config_version = 0  # the remote config version running (0: local file only)
        self._polls: dict[str, asyncio.Task[None]] = {}
        self._stop: asyncio.Event | None = None
        self._config_lock = asyncio.Lock()
        self._append_retry_at = 0.0  # loop time before which a failed append is not retried
        self._append_failures = 0
        self._unstored_reason = "not stored"  # why readings held in memory are not stored yet
        self._lost_reasons: dict[str, int] = {}  # reason -> readings lost for it
        self._carried: dict[int, tuple[int, ...]] = {}  # seq -> skipped seqs its envelope named
        self._reported: list[int] = []  # skipped seqs the collector has recorded
        publisher.subscribe(ack_topic(cfg.device_id), self._on_ack)

    def _now_ms(self) -> int:
        return to_ms(self.clock.now())

    # -- polling ---------------------------------------------------------------------------

    async def _poll(self, source: Source, stop: asyncio.Event) -> None:
        carry: list[Reading] = []
        try:
            await self._poll_until(source, stop, carry)
            await self._store(carry, force=True)  # one last try, backoff or not
        finally:
            if carry:  # taken, and the buffer never stored them: truly lost
                self._lose(len(carry), self._unstored_reason)
                log.error("source %s: %d reading(s) could not be stored when polling stopped "
                          "(%s)", source.name, len(carry), self._unstored_reason)

    async def _poll_until(self, source: Source, stop: asyncio.Event,
                          carry: list[Reading]) -> None:
        due = self.clock.monotonic()
        # one waiter on the stop for the whole loop: a poll then sleeps with no task of its own
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                try:
                    carry.extend(await source.read(self.clock.now()))
                except DiskFullError as exc:
                    self._disk_full(exc)
                except AgentError as exc:
                    self.health.source_errors += 1
                    self.health.error(f"source {source.name}: {exc}", self._now_ms())
                    log.warning("source %s failed: %s", source.name, exc)
                await self._store(carry)
                due += source.interval_s
                delay = due - self.clock.monotonic()
                if delay < 0:  # fell behind (slow source, suspended host): skip missed polls
                    due = self.clock.monotonic()
                    delay = 0
                await asyncio.wait((stopped,), timeout=delay)
        finally:
            stopped.cancel()

    async def _store(self, carry: list[Reading], *, force: bool = False) -> None:
        """Append ``carry``; what is stored leaves it, what must be retried stays (bounded to
        _CARRY_MAX).

        After a failed append the next attempts back off (up to 2 s apart, shared by all
        sources: one disk), unless ``force`` (the last attempt before shutdown). An append
        once started runs to its end even if the poll is cancelled meanwhile (the shutdown
        budget ran out, a new configuration): its outcome, not the cancellation, decides
        whether the readings were stored, so a committed reading is never counted lost.
        """
        if not carry:
            return
        loop = asyncio.get_running_loop()
        if not force and loop.time() < self._append_retry_at:
            self._bound(carry)
            return
        readings = list(carry)
        append = asyncio.ensure_future(self.buffer.append(readings))
        cancelled = False
        while not append.done():
            try:
                await asyncio.wait((append,))
            except asyncio.CancelledError:
                cancelled = True  # re-raised once the outcome is recorded
        try:
            self._appended_outcome(append, carry, len(readings), loop)
        finally:
            if cancelled:
                raise asyncio.CancelledError

    def _appended_outcome(self, append: asyncio.Future[None], carry: list[Reading], n: int,
                          loop: asyncio.AbstractEventLoop) -> None:
        exc = append.exception()
        if isinstance(exc, BufferFullError):  # refused by policy: counted by the buffer itself
            self.health.error(str(exc), self._now_ms())
            del carry[:n]
            return
        if isinstance(exc, BufferError_):  # disk full or another I/O error: retry later
            if isinstance(exc, DiskFullError):
                self._disk_full(exc)
                self._unstored_reason = "disk full"
            else:
                self.health.buffer_errors += 1
                self.health.error(str(exc), self._now_ms())
                if self._append_failures == 0:
                    log.error("buffer append failed, will keep retrying: %s", exc)
                self._unstored_reason = f"buffer error: {exc}"
            self._append_retry_at = loop.time() + backoff_delay(
                self._append_failures, base_s=0.05, cap_s=2.0, rng=self._rng)
            self._append_failures += 1
            self._bound(carry)
            return
        if exc is not None:
            self._unstored_reason = f"{type(exc).__name__}: {exc}"
            raise exc
        del carry[:n]
        self._append_failures = 0
        self._append_retry_at = 0.0
        self.health.disk_full = False
        # the batcher sleeps until the lane's oldest reading is due: only a first reading (the
        # lane's age starts) or a full batch changes when that is, so only they wake it
        if self._oldest_mono is None:
            self._oldest_mono = self.clock.monotonic()
            self._appended.set()
        elif self.buffer.last_id - self._live_from >= self.cfg.batch.max_readings:
            self._appended.set()

    def _bound(self, carry: list[Reading]) -> None:
        """What a poll loop may keep in memory; the excess (the oldest) is counted as lost."""
        if len(carry) > _CARRY_MAX:
            excess = len(carry) - _CARRY_MAX
            self._lose(excess, self._unstored_reason)
            del carry[:excess]

    def _lose(self, n: int, reason: str) -> None:
        self.health.lost_readings += n
        self._lost_reasons[reason] = self._lost_reasons.get(reason, 0) + n

    def _disk_full(self, exc: Exception) -> None:
        if not self.health.disk_full:
            log.error("buffer disk full, will keep retrying: %s", exc)
        self.health.disk_full = True
        self.health.error(str(exc), self._now_ms())

    # -- batching --------------------------------------------------------------------------

    async def _batcher(self) -> None:
        """Seal batches. While readings wait to be sealed it sleeps until the oldest is due
        (``max_age_s`` after it was stored), unless the lane fills a batch first; otherwise it
        sleeps until a first reading or a deletion wakes it, or ``max_age_s`` has passed. One
        wake-up per batch: a host running thousands of agents would spend itself waking
        batchers that have nothing to seal yet."""
        bc = self.cfg.batch
        retry_s = min(0.25, bc.max_age_s / 4)
        max_pending = max(bc.window, bc.in_flight) + bc.in_flight
        while True:
            final = self._polling_done.is_set()
            room = max_pending - len(self.buffer.pending())
            if room <= 0 and self.buffer.last_id - self._live_from > bc.max_readings:
                # nothing can be sealed (broker or collector away): the lane joins the backlog
                self._live_from, self._oldest_mono = self.buffer.last_id, None
            try:
                sealed = await self._seal_next(room, final) if room > 0 else []
            except DiskFullError as exc:
                self._disk_full(exc)
                sealed = []
            if sealed:
                self._ready.update((b.seq, b) for b in sealed)
                self._sealed.set()
                continue
            if final and self.buffer.unbatched == 0:
                return
            self._appended.clear()
            # nothing due yet, or no room until a deletion: sleep until due or woken; a lane due
            # but not sealed (a full disk) is tried again every `retry_s`
            wait = bc.max_age_s
            if self._oldest_mono is not None and room > 0:
                wait = self._oldest_mono + bc.max_age_s - self.clock.monotonic()
                wait = wait if wait > 0 else retry_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appended.wait(), wait)

    async def _seal_next(self, room: int, final: bool) -> list[SealedBatch]:
        """Seal the live lane when due, else the oldest backlog, keeping one slot of ``room``
        for the live lane while draining (unless shutting down)."""
        bc = self.cfg.batch
        last = self.buffer.last_id
        live = last - self._live_from  # an upper bound: readings may have been dropped
        due = final or (self._oldest_mono is not None and
                        self.clock.monotonic() - self._oldest_mono >= bc.max_age_s)
        if live >= bc.max_readings or (due and live > 0):
            upto = min(last, self._live_from + room * bc.max_readings)
            began = self.clock.monotonic()
            sealed = await self.buffer.seal(bc.max_readings, self._now_ms(), max_batches=room,
                                            lane=(self._live_from, upto))
            self._live_from = upto  # readings left at or below it are sealed as backlog
            if upto == last:
                # the lane is empty, or holds only readings stored once the seal had begun:
                # their age starts then, not at the sealed readings' (sealing them at once
                # would make a batch per reading that lands during a seal)
                self._oldest_mono = None if self.buffer.last_id == upto else began
            self._live.update(b.seq for b in sealed)
            if sealed:
                return sealed
        backlog = self.buffer.unbatched - max(self.buffer.last_id - self._live_from, 0)
        take = room if final else room - 1
        if backlog <= 0 or take < 1:
            return []
        return await self.buffer.seal(bc.max_readings, self._now_ms(), max_batches=take,
                                      lane=(0, self._live_from))

    # -- publishing ------------------------------------------------------------------------

    def _sendable(self) -> bool:
        b = self.cfg.batch
        return len(self._in_flight) < b.in_flight and \
            len(self._in_flight) + len(self._unconfirmed) < max(b.window, b.in_flight)

    async def _send_window(self) -> None:
        """Publish pending batches while the windows have room: live ones first, then in seq
        order."""
        pending = self.buffer.pending()
        low = next((s for s in pending if s not in self._confirmed), None)
        skipped = seq_ranges(self.buffer.skipped())[:MAX_SKIPPED_RANGES] if self._e2e else ()
        self._live.intersection_update(pending)
        for seq in sorted(pending, key=lambda s: s not in self._live):  # stable: seq order kept
            if not self._sendable():
                return
            if seq in self._in_flight or seq in self._confirmed or seq in self._unconfirmed:
                continue
            try:
                stored = self._ready.get(seq) or await self.buffer.load(seq)
            except BufferError_:
                if seq not in self.buffer.pending():
                    continue  # confirmed and deleted (or dropped) while we were sending others
                raise
            batch = Batch(self.cfg.device_id, seq, stored.sealed_ms, __version__, stored.series,
                          low if self._e2e else None, skipped)
            if skipped:
                self._carried[seq] = tuple(x for lo, hi in skipped for x in range(lo, hi + 1))
            payload = encode_batch(batch, self.cfg.encoding)
            self._in_flight[seq] = (self.publisher.publish(self._topic, payload),
                                    stored.reading_count)

    @property
    def _e2e(self) -> bool:
        return self.cfg.batch.confirm == "collector"

    def _take_done(self) -> None:
        """Pop completed publishes: PUBACKed ones become "sent, unconfirmed" (or, with
        ``confirm = "broker"``, confirmed); failed ones are sent again."""
        done = [(s, n) for s, (f, n) in self._in_flight.items() if f.done()]
        if not done:
            return
        held = set(self.buffer.pending())  # a batch confirmed before its PUBACK may be gone
        sent: list[int] = []
        for seq, n in done:
            fut, _ = self._in_flight.pop(seq)
            exc = PublishError("publish cancelled") if fut.cancelled() else fut.exception()
            if exc is not None:
                self.health.error(f"batch {seq}: {exc}", self._now_ms())
                continue
            self.health.published_batches += 1
            self.health.published_readings += n
            if seq in held and seq not in self._confirmed:
                sent.append(seq)
        if not sent:
            return
        if self._e2e:
            now = self.clock.monotonic()
            self._unconfirmed.update((seq, now) for seq in sent)
            self._to_mark.extend(sent)
        else:
            self._confirm(sent)
        self._ack_wake.set()

    def _confirm(self, seqs: Sequence[int]) -> None:
        for seq in seqs:
            self._unconfirmed.pop(seq, None)
        self._confirmed.update(seqs)
        self._to_ack.extend(seqs)
        self._ack_wake.set()

    def _on_ack(self, payload: bytes) -> None:
        """An acknowledgement from the collector (live or retained): forget what it confirms."""
        try:
            ack = decode_ack(payload, topic_device=self.cfg.device_id)
        except ProtocolError as exc:
            self.health.error(f"bad acknowledgement: {exc}", self._now_ms())
            return
        outcomes = ack.outcomes(s for s in self.buffer.pending() if s not in self._confirmed)
        if not outcomes:
            return
        for seq, outcome in outcomes.items():
            if outcome is Outcome.DEAD_LETTERED:
                self.health.dead_lettered_batches += 1
                reason = next(r for s, r in ack.dead if s == seq)
                self.health.error(f"batch {seq} dead-lettered by the collector: {reason}",
                                  self._now_ms())
                log.error("batch %d was dead-lettered by the collector: %s", seq, reason)
            elif outcome is Outcome.DUPLICATE:
                self.health.duplicate_batches += 1
            elif outcome is Outcome.CONFLICT:
                self.health.conflicting_batches += 1
                self.health.error(
                    f"batch {seq} conflicts with a stored batch of the same seq: kept aside by "
                    "the collector, not counted", self._now_ms())
                log.error("batch %d conflicts with a batch of the same seq already stored by the "
                          "collector (different readings): kept aside for staff, not counted; "
                          "was the buffer restored from an old copy?", seq)
            if outcome is not Outcome.DEAD_LETTERED:  # its skipped seqs are recorded too
                self._reported.extend(self._carried.pop(seq, ()))
            self.health.confirmed_batches += 1
        self._confirm(list(outcomes))
        self._sealed.set()  # wake the pump: the window has room

    def _expire(self) -> None:
        """Batches unconfirmed for confirm_timeout_s are sent again; dropped ones forgotten."""
        if self._unconfirmed:
            held = set(self.buffer.pending())
            for seq in [s for s in self._unconfirmed if s not in held]:
                del self._unconfirmed[seq]  # dropped by drop_oldest: reported as skipped
        limit = self.clock.monotonic() - self.cfg.batch.confirm_timeout_s
        late = [seq for seq, t in self._unconfirmed.items() if t <= limit]
        for seq in late:
            del self._unconfirmed[seq]
        self.health.resent_batches += len(late)

    async def _acker(self) -> None:
        """Record sends and delete confirmed batches in the background, many per transaction.

        A failing delete (disk full, I/O error) is retried with backoff; the batch stays
        confirmed meanwhile, so it is never sent again.
        """
        attempt = 0
        while True:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            if self._to_mark:
                marks, self._to_mark = self._to_mark, []
                with contextlib.suppress(AgentError):  # only the age in the status is lost
                    await self.buffer.mark_sent(marks, self._now_ms())
            if self._reported:
                reported, self._reported = self._reported, []
                try:
                    await self.buffer.forget_skipped(reported)
                except AgentError:  # reported again with a later batch: harmless
                    self.health.buffer_errors += 1
            while self._to_ack:
                batch, self._to_ack = self._to_ack, []
                if await self._ack(batch):
                    attempt = 0
                    self._sealed.set()  # wake the pump: the flush on shutdown waits for this
                    continue
                self._to_ack = batch + self._to_ack
                await asyncio.sleep(backoff_delay(attempt, base_s=0.1, cap_s=2.0, rng=self._rng))
                attempt += 1

    async def _ack(self, confirmed: list[int]) -> bool:
        if not confirmed:
            return True
        try:
            await self.buffer.ack(confirmed)
        except AgentError as exc:  # rows stay; the delete is retried (never re-sent)
            self.health.buffer_errors += 1
            self.health.error(f"delete of {len(confirmed)} confirmed batch(es) failed: {exc}",
                              self._now_ms())
            return False
        for seq in confirmed:
            self._ready.pop(seq, None)
            self._confirmed.discard(seq)
        self._appended.set()  # wake the batcher: the window has room again
        return True

    async def _pump(self, stop: asyncio.Event) -> None:
        """Send and collect acks while connected; returns on disconnect or when all is flushed."""
        down = asyncio.ensure_future(self.publisher.wait_disconnected())
        woken: asyncio.Future[Any] | None = None  # kept until _sealed is set: one task, not
        try:  # one per look
            while self.publisher.connected:
                self._take_done()
                self._expire()
                await self._send_window()
                if stop.is_set() and self._polling_done.is_set() and not self._in_flight \
                        and not self.buffer.pending() and self.buffer.unbatched == 0:
                    return
                self._sealed.clear()
                if woken is None or woken.done():
                    woken = asyncio.ensure_future(self._sealed.wait())
                waits: list[asyncio.Future[Any]] = [down, woken]
                waits += [f for f, _ in self._in_flight.values()]
                await asyncio.wait(waits, timeout=self._pump_wait(),
                                   return_when=asyncio.FIRST_COMPLETED)
            self._take_done()
        finally:  # also when cancelled: no task left pending on a discarded agent
            down.cancel()
            if woken is not None:
                woken.cancel()

    def _pump_wait(self) -> float:
        """How long the pump may sleep when nothing wakes it (a seal, an acknowledgement, a
        PUBACK, a disconnect, the stop): 1 s while batches await confirmation (their timeout
        is watched), else ``_IDLE_S``."""
        return 1.0 if self._unconfirmed else _IDLE_S

    async def _status(self) -> None:
        if not self.publisher.connected:
            return
        stats = None
        with contextlib.suppress(AgentError):
            stats = await self.buffer.stats()
        payload = online_status(device=self.cfg.device_id, version=__version__,
                                now_ms=self._now_ms(), stats=stats, health=self.health,
                                config_version=self.config_version)
        with contextlib.suppress(PublishError):
            self.publisher.publish(self._status_topic, payload, retain=True)

    async def _status_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.status_interval_s)
            await self._status()

    async def _supervise(self, stop: asyncio.Event, deadline: asyncio.Event) -> None:
        """Connect, pump, and reconnect with backoff until flushed after stop (or deadline)."""
        br = self.cfg.broker
        attempt = 0
        connected_at = self.clock.monotonic()
        while not deadline.is_set():
            if not self.publisher.connected:
                try:
                    await self.publisher.connect()
                except PublishError as exc:
                    self.health.error(str(exc), self._now_ms())
                    await self._sleep_backoff(attempt, stop, deadline)
                    attempt += 1
                    continue
                self.health.connects += 1
                connected_at = self.clock.monotonic()
                # after any reconnect every unconfirmed batch is sent again: the broker may
                # have lost it (no persistence, crash before autosave); dedup absorbs repeats
                self.health.resent_batches += len(self._unconfirmed)
                self._unconfirmed.clear()
                log.info("connected to %s", redact_url(br.url))
                await self._status()
            await self._pump(stop)
            if stop.is_set() and self.publisher.connected:
                return  # flushed
            if self.clock.monotonic() - connected_at >= _STABLE_S:
                attempt = 0
            self.health.error(f"disconnected: {getattr(self.publisher, 'last_disconnect', '')}",
                              self._now_ms())
            await self._sleep_backoff(attempt, stop, deadline)
            attempt += 1

    async def _sleep_backoff(self, attempt: int, stop: asyncio.Event,
                             deadline: asyncio.Event) -> None:
        br = self.cfg.broker
        delay = backoff_delay(attempt, base_s=br.reconnect_min_s, cap_s=br.reconnect_max_s,
                              rng=self._rng)
        log.info("reconnecting in %.2fs (attempt %d)", delay, attempt + 1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(deadline.wait(), delay)

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set, then shut down within ``shutdown_timeout_s``.

        Returns how many readings taken could not be stored at all (a full disk, a failing
        buffer, for longer than the run lasted): 0 on a clean run. A reading whose append
        was under way when the shutdown budget ran out is waited for, never counted lost once
        it is committed.
        """
        deadline = asyncio.Event()
        self._stop = stop
        self._start_polls(stop)
        batcher = asyncio.create_task(self._batcher(), name="batcher")
        status = asyncio.create_task(self._status_loop(stop), name="status")
        supervisor = asyncio.create_task(self._supervise(stop, deadline), name="supervisor")
        acker = asyncio.create_task(self._acker(), name="acker")
        loop = asyncio.get_running_loop()
        end = float("inf")

        def left() -> float:
            return max(end - loop.time(), 0.0)

        try:
            await stop.wait()
            end = loop.time() + self.cfg.shutdown_timeout_s  # one budget for the whole shutdown
            async with self._config_lock:  # no configuration change while shutting down
                polls = list(self._polls.values())
                if polls:
                    await asyncio.wait(polls, timeout=left())  # a poll still running is cancelled
            self._polling_done.set()
            self._appended.set()
            self._sealed.set()  # the pump returns once all is flushed: let it look now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(batcher), left())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(supervisor), left())
        finally:
            deadline.set()
            polls = list(self._polls.values())
            for task in (*polls, batcher, status, supervisor, acker):
                task.cancel()
            await asyncio.gather(*polls, batcher, status, supervisor, acker,
                                 return_exceptions=True)
            await self._farewell(max(min(left(), 2.0), 0.5))
            for source in self.sources:
                with contextlib.suppress(Exception):
                    await source.close()
            await self.buffer.close()
        if self.health.lost_readings:
            log.error("%d reading(s) could not be stored and are lost (%s)",
                      self.health.lost_readings, self.lost_summary())
        return self.health.lost_readings

    def lost_summary(self) -> str:
        """Why readings were lost, e.g. ``"12 disk full"``; empty when none were."""
        return ", ".join(f"{n} {reason}" for reason, n in sorted(self._lost_reasons.items()))

    def _start_polls(self, stop: asyncio.Event) -> None:
        self._polls = {s.name: asyncio.create_task(self._poll(s, stop), name=f"poll-{s.name}")
                       for s in self.sources}

    def on_config(self, topic: str, payload: bytes) -> None:
        """A config document arrived (retained, on connect or when staff change it)."""
        if payload:
            asyncio.get_running_loop().create_task(self.apply_config(payload))

    async def apply_config(self, payload: bytes) -> bool:
        """Apply a remote config if it is newer: sources are rebuilt and polled from now on,
        without a restart; the document is kept for the next start. Returns whether applied."""
        async with self._config_lock:
            stop = self._stop
            if stop is None or stop.is_set():
                return False
            try:
                rc = parse_remote_config(payload, self.cfg.device_id)
                if rc.version <= self.config_version:
                    return False
                sources = build_sources(list(rc.sources), self.buffer)
            except AgentError as exc:
                self.health.error(f"remote config refused: {exc}", self._now_ms())
                log.warning("remote config refused: %s", exc)
                return False
            old_tasks, old_sources = list(self._polls.values()), self.sources
            for task in old_tasks:
                task.cancel()
            await asyncio.gather(*old_tasks, return_exceptions=True)
            for source in old_sources:
                with contextlib.suppress(Exception):
                    await source.close()
            self.sources = list(sources)
            self._start_polls(stop)
            self.config_version = rc.version
            with contextlib.suppress(OSError):
                write_private(applied_path(Path(self.cfg.buffer.path)), rc.raw)
            log.info("remote config version %d applied: %d source(s)", rc.version,
                     len(self.sources))
        await self._status()
        return True

    async def _farewell(self, wait_s: float) -> None:
        self._take_done()
        self._to_ack = []
        await self._ack(sorted(self._confirmed))  # also those the cancelled acker held
        if self.publisher.connected:
            final = None
            with contextlib.suppress(AgentError):
                final = await self.buffer.stats()
            with contextlib.suppress(Exception):
                fut = self.publisher.publish(
                    self._status_topic,
                    offline_status(device=self.cfg.device_id, version=__version__,
                                   reason="shutdown", now_ms=self._now_ms(),
                                   lost=self.health.lost_readings, stats=final,
                                   health=self.health),
                    retain=True,
                )
                await asyncio.wait_for(fut, wait_s)
        await self.publisher.close()


async def open_agent(cfg: AgentConfig, *, clock: Clock | None = None) -> Agent:
    """Build the agent from ``cfg`` (buffer opened, publisher made, remote config restored)."""
    clock = clock or SystemClock()
    buffer = await SqliteBuffer.open(Path(cfg.buffer.path), device_id=cfg.device_id,
                                     now_ms=to_ms(clock.now()), limits=cfg.buffer.limits())
    try:
        applied = load_applied(Path(cfg.buffer.path), cfg.device_id)
        sources = build_sources(list(applied.sources) if applied else cfg.sources, buffer)
        publisher = MqttPublisher(
            client_id=cfg.device_id, broker=cfg.broker, will_topic=status_topic(cfg.device_id),
            will_payload=offline_status(device=cfg.device_id, version=__version__,
                                        reason="connection lost", now_ms=None),
            max_in_flight=cfg.batch.in_flight + 4,
        )
    except BaseException:
        await buffer.close()
        raise
    agent = Agent(cfg, buffer=buffer, publisher=publisher, sources=sources, clock=clock)
    agent.config_version = applied.version if applied else 0
    publisher.listen((config_topic(cfg.device_id),), agent.on_config)
    return agent


async def run_agent(cfg: AgentConfig, stop: asyncio.Event, *, clock: Clock | None = None) -> int:
    """Build everything from ``cfg`` and run until ``stop`` is set; returns the readings lost."""
    agent = await open_agent(cfg, clock=clock)
    return await agent.run(stop)
