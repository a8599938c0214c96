"""Ports of the ingest pipeline, with in-memory fakes for tests and demos."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from collector.errors import StorageUnavailable

from .messages import (
    DeadLetter,
    FlushOutcome,
    FlushPlan,
    InboundMessage,
    OutboundAck,
    StatusUpdate,
)

__all__ = ["Acknowledger", "InMemoryIngestStore", "IngestStore", "RecordingAcknowledger"]


class IngestStore(Protocol):
    """Stores a flush plan atomically (all or nothing); deduplicates batches by (device, seq)."""

    def write(self, plan: FlushPlan) -> FlushOutcome: ...


class Acknowledger(Protocol):
    """Acknowledges messages to the broker, and batches to their devices, once stored."""

    def ack(self, messages: Sequence[InboundMessage]) -> None: ...

    def confirm(self, acks: Sequence[OutboundAck]) -> None:
        """Publish end-to-end acknowledgements (``tally/v1/<device>/ack``)."""


class InMemoryIngestStore:
    """An ``IngestStore`` in memory; ``available = False`` makes writes raise StorageUnavailable."""

    def __init__(self) -> None:
        self.available = True
        self.readings: list[tuple[str, str, str, int, float]] = []  # device, meter, metric, ts, v
        self.batch_keys: set[tuple[str, int]] = set()
        self.statuses: dict[str, StatusUpdate] = {}
        self.dead_letters: list[DeadLetter] = []
        self.writes = 0

    def write(self, plan: FlushPlan) -> FlushOutcome:
        if not self.available:
            raise StorageUnavailable("in-memory store is marked unavailable")
        self.writes += 1
        new = dup = count = 0
        dups: list[tuple[str, int]] = []
        for item in plan.batches:
            key = (item.batch.device, item.batch.seq)
            if key in self.batch_keys:
                dup += 1
                dups.append(key)
                continue
            self.batch_keys.add(key)
            new += 1
            for s in item.batch.series:
                for t, v in zip(s.ts_ms.tolist(), s.values.tolist(), strict=True):
                    self.readings.append((item.batch.device, s.meter, s.metric, t, v))
                    count += 1
        for st in plan.statuses:
            self.statuses[st.device] = st
        self.dead_letters.extend(plan.dead_letters)
        durable = tuple(
            (d, tuple(sorted(s for dd, s in self.batch_keys if dd == d and s >= floor)))
            for d, floor in plan.ack_from
        )
        return FlushOutcome(new, dup, count, len(plan.statuses), len(plan.dead_letters),
                            duplicates=tuple(sorted(set(dups))), durable=durable)


class RecordingAcknowledger:
    """An ``Acknowledger`` that records the message ids it acknowledged."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.confirmed: list[OutboundAck] = []

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        self.acked.extend(m.mid for m in messages)

    def confirm(self, acks: Sequence[OutboundAck]) -> None:
        self.confirmed.extend(acks)
