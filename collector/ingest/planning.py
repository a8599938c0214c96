"""Pure flush planning: received messages → batches, status updates and dead letters.

Never raises for a bad message: a ``ProtocolError`` becomes a dead letter with its reason and
field, anything unexpected a dead letter with reason ``internal: …``.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.errors import ProtocolError

from .acks import ack_floors
from .decoders import DecoderTable, decode_status
from .messages import DeadLetter, DecodedBatch, FlushPlan, InboundMessage, StatusUpdate

__all__ = ["plan_flush"]


def plan_flush(messages: Iterable[InboundMessage], decoders: DecoderTable) -> FlushPlan:
    """Decode every message; each lands in exactly one of the plan's three lists (or is ignored
    when it is an empty retained status)."""
    batches: list[DecodedBatch] = []
    statuses: list[StatusUpdate] = []
    dead: list[DeadLetter] = []
    for msg in messages:
        try:
            if decoders.is_status(msg.topic):
                status = decode_status(msg.topic, msg.payload, msg.received_ms)
                if status is not None:
                    statuses.append(status)
                continue
            decoder = decoders.batch_decoder(msg.topic)
            if decoder is None:
                dead.append(_dead(msg, f"no decoder for topic {msg.topic!r:.120}", "topic"))
                continue
            batch = decoder(msg.topic, msg.payload, msg.received_ms)
            batches.append(DecodedBatch(batch, msg.topic, msg.payload, msg.received_ms))
        except ProtocolError as exc:
            dead.append(_dead(msg, exc.reason, exc.field))
        except Exception as exc:  # one bad message must never stop ingest
            dead.append(_dead(msg, f"internal: {type(exc).__name__}: {exc}"[:500], None))
    return FlushPlan(tuple(batches), tuple(statuses), tuple(dead), ack_floors(batches, dead))


def _dead(msg: InboundMessage, reason: str, field: str | None) -> DeadLetter:
    return DeadLetter(msg.topic, msg.payload, reason, field, msg.received_ms)
