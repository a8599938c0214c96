"""Value objects that flow through ingest: an inbound message, its decoded forms, a flush plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.protocol import Batch


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One MQTT message as received: acknowledged (``mid``) only after it is stored."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_ms: int
    generation: int = 0  # the consumer's connection count when received: a PUBACK is only
    # sent on that same connection (message ids restart on a new one)


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """A valid batch with its message (kept for a dead letter if storage rejects it)."""

    batch: Batch
    topic: str
    payload: bytes
    received_ms: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that cannot be ingested, with the reason and the offending field."""

    topic: str
    payload: bytes
    reason: str
    field: str | None
    received_ms: int


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """An agent's (retained) status message."""

    device: str
    received_ms: int
    state: str | None
    buffer_depth: int | None
    document: str  # the JSON object, re-serialised


@dataclass(frozen=True, slots=True)
class FlushPlan:
    """Everything one flush writes in one transaction."""

    batches: tuple[DecodedBatch, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    ack_from: tuple[tuple[str, int], ...] = ()  # (device, lowest seq) to list durable seqs from

    def __len__(self) -> int:
        return len(self.batches) + len(self.statuses) + len(self.dead_letters)


@dataclass(frozen=True, slots=True)
class FlushOutcome:
    """What a committed flush did."""

    new_batches: int = 0
    duplicate_batches: int = 0
    readings: int = 0
    statuses: int = 0
    dead_letters: int = 0
    rejected: tuple[DeadLetter, ...] = field(default=())  # batches the store dead-lettered
    duplicates: tuple[tuple[str, int], ...] = ()  # (device, seq) of batches stored before
    durable: tuple[tuple[str, tuple[int, ...]], ...] = ()  # per ``ack_from`` device: stored
    # seqs >= its floor, ascending, as of the commit (bounded; see ReadingStore.DURABLE_LIMIT)


@dataclass(frozen=True, slots=True)
class OutboundAck:
    """An end-to-end acknowledgement to publish (retained) once its flush has committed."""

    topic: str
    payload: bytes
