"""The buffer port: where readings wait, durably, until the broker has acknowledged them.

Pure value types and the ``ReadingBuffer`` protocol shared by the SQLite adapter
(``agent.buffer.SqliteBuffer``) and the in-memory fake (``agent.buffer_fake.MemoryBuffer``).

Life of a reading: ``append`` (committed; ids ever larger, ``last_id`` the newest) -> ``seal``
(assigned to batch ``seq``, a fixed set; the oldest unbatched first, or those of an id ``lane``)
-> ``load(seq)`` (re-read, identical every time) -> ``mark_sent([seq])`` after PUBACK (the
broker has it: "sent, unconfirmed", kept across restarts) -> ``ack([seq])`` once the collector
has confirmed it committed (deleted).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.protocol import Reading, Series
from agent.sources.base import StateStore


class FullPolicy(enum.StrEnum):
    """What the buffer does with a new reading when it is at its limit."""

    REFUSE_NEW = "refuse_new"  # raise BufferFullError; the new readings are counted as refused
    DROP_OLDEST = "drop_oldest"  # delete the oldest readings (whole sealed batches first, their
    # seqs reported to the collector as skipped); counted as dropped


@dataclass(frozen=True, slots=True)
class BufferLimits:
    """Size bounds of the buffer; ``None`` means unbounded on that axis."""

    max_readings: int | None = None
    max_bytes: int | None = None
    policy: FullPolicy = FullPolicy.REFUSE_NEW

    def __post_init__(self) -> None:
        if self.max_readings is not None and self.max_readings < 1:
            raise ValueError("max_readings must be >= 1")
        if self.max_bytes is not None and self.max_bytes < 65_536:
            raise ValueError("max_bytes must be >= 65536")


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """A batch as stored: its seq, when it was sealed, and its readings as columnar series."""

    seq: int
    sealed_ms: int
    series: tuple[Series, ...]

    @property
    def reading_count(self) -> int:
        return sum(len(s) for s in self.series)


@dataclass(frozen=True, slots=True)
class BufferStats:
    """Figures for the status message and ``tally-agent status``."""

    depth: int  # readings held (batched or not)
    unbatched: int  # readings not yet assigned to a batch
    pending_batches: int  # sealed batches not yet acknowledged
    oldest_ts_ms: int | None  # timestamp of the oldest reading held
    dropped: int  # readings deleted by the drop_oldest policy (ever)
    refused: int  # readings refused by the refuse_new policy (ever)
    used_bytes: int  # bytes of the store in use
    next_seq: int  # the seq the next sealed batch will get
    dropped_batches: int = 0  # sealed batches dropped by drop_oldest (their readings in dropped)
    skipped_unreported: int = 0  # seqs of dropped batches not yet recorded by the collector
    unconfirmed_batches: int = 0  # sent (PUBACKed) but not yet confirmed by the collector
    oldest_sent_ms: int | None = None  # when the oldest of those was first sent
    # for reconciliation against the collector (what the meters gave vs what was stored):
    taken_by_meter: tuple[tuple[str, int], ...] = ()  # readings committed, per meter, ever
    first_seq: int | None = None  # the seq of this buffer file's first batch


class ReadingBuffer(StateStore, Protocol):
    """Durable queue of readings, batched by seq; also the sources' state store."""

    @property
    def unbatched(self) -> int: ...

    @property
    def last_id(self) -> int: ...

    def pending(self) -> list[int]: ...

    async def append(self, readings: Sequence[Reading]) -> None: ...

    async def seal(
        self, max_readings: int, now_ms: int, *, max_batches: int = 1,
        lane: tuple[int, int] | None = None,
    ) -> list[SealedBatch]: ...

    async def load(self, seq: int) -> SealedBatch: ...

    async def mark_sent(self, seqs: Sequence[int], now_ms: int) -> None: ...

    def sent(self) -> dict[int, int]: ...

    async def ack(self, seqs: Sequence[int]) -> None: ...

    def skipped(self) -> list[int]: ...

    async def forget_skipped(self, seqs: Sequence[int]) -> None: ...

    async def stats(self) -> BufferStats: ...

    async def close(self) -> None: ...


def initial_seq(now_ms: int) -> int:
    """First seq of a brand-new buffer: ``now_ms * 1000``.

    The collector deduplicates on (device, seq) forever, so a device whose buffer file is lost
    must never reuse a seq: starting from the creation time keeps a fresh buffer above every seq
    an older one could have reached (it would have had to seal > 1000 batches per ms).
    """
    return now_ms * 1000
