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
