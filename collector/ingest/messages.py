"""Value objects that flow through ingest: an inbound message, its decoded forms, a flush plan."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from agent.protocol import Batch

# A dead letter keeps at most this much of its payload, plus the payload's size and SHA-256.
DEAD_LETTER_KEEP_BYTES: Final = 64 * 1024


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

    @property
    def kept_payload(self) -> bytes:
        """What is stored: the first ``DEAD_LETTER_KEEP_BYTES`` of the payload."""
        return self.payload[:DEAD_LETTER_KEEP_BYTES]

    @property
    def payload_size(self) -> int:
        return len(self.payload)

    @property
    def payload_sha256(self) -> bytes:
        """SHA-256 of the whole payload (identifies it even when only a prefix is kept)."""
        return hashlib.sha256(self.payload).digest()


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """An agent's (retained) status message."""

    device: str
    received_ms: int
    state: str | None
    buffer_depth: int | None
    document: str  # the JSON object, re-serialised
    sent_ms: int | None = None  # the document's own timestamp (``ts``), when it has one

    @property
    def as_of_ms(self) -> int:
        """When the status was true: the document's own time, never later than its arrival
        (a redelivered retained status keeps its old time; a clock ahead cannot make it
        newer than it is)."""
        return self.received_ms if self.sent_ms is None else min(self.sent_ms, self.received_ms)


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
    conflicts: int = 0  # same (device, seq) as a stored batch, different readings: kept aside
    duplicates: tuple[tuple[str, int], ...] = ()  # (device, seq) of batches stored before
    conflicting: tuple[tuple[str, int], ...] = ()  # (device, seq) of the conflicts (kept aside)
    durable: tuple[tuple[str, tuple[int, ...]], ...] = ()  # per ``ack_from`` device: stored
    # seqs >= its floor, ascending, as of the commit (bounded; see ReadingStore.DURABLE_LIMIT)


@dataclass(frozen=True, slots=True)
class OutboundAck:
    """An end-to-end acknowledgement to publish (retained) once its flush has committed."""

    topic: str
    payload: bytes
