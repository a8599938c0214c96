"""Pure end-to-end acknowledgement planning: which seqs to confirm to which device after a commit.

Only Tally v1 batches (``tally/v1/<device>/readings``) are acknowledged end to end; SenML packs
and other device families are not (their devices know nothing of ``tally/v1/<device>/ack``).
Before the flush is written, :func:`ack_floors` picks, per device, the seq from which the store
lists durable seqs (the agent's ``low``, else the smallest seq of the flush); after the commit,
:func:`build_acks` turns the flush's outcome into one message per device
(``agent.protocol_ack``).
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.errors import ProtocolError
from agent.protocol import Encoding, device_from_topic
from agent.protocol_ack import Ack, ack_topic, encode_ack, peek_batch_key, seq_ranges

from .messages import DeadLetter, DecodedBatch, FlushOutcome, FlushPlan, OutboundAck

__all__ = ["ack_floors", "build_acks", "confirmed_upto"]


def _v1_device(topic: str) -> str | None:
    try:
        return device_from_topic(topic)
    except ProtocolError:
        return None


def _dead_keys(letters: Iterable[DeadLetter]) -> list[tuple[str, int, str]]:
    out = []
    for d in letters:
        device = _v1_device(d.topic)
        seq = peek_batch_key(d.payload) if device is not None else None
        if device is not None and seq is not None:
            out.append((device, seq, d.reason))
    return out


def _v1_batches(batches: Iterable[DecodedBatch]) -> list[DecodedBatch]:
    return [b for b in batches if _v1_device(b.topic) == b.batch.device]


def ack_floors(
    batches: Iterable[DecodedBatch], dead: Iterable[DeadLetter]
) -> tuple[tuple[str, int], ...]:
    """Per device: the lowest seq its acknowledgement covers (sorted by device)."""
    floors: dict[str, int] = {}
    for b in _v1_batches(batches):
        low = b.batch.seq if b.batch.low is None else min(b.batch.low, b.batch.seq)
        floors[b.batch.device] = min(floors.get(b.batch.device, low), low)
    for device, seq, _ in _dead_keys(dead):
        floors[device] = min(floors.get(device, seq), seq)
    return tuple(sorted(floors.items()))


def confirmed_upto(floor: int, durable: tuple[int, ...]) -> int | None:
    """The last seq of the unbroken run of durable seqs starting at ``floor``, if any."""
    top = None
    expect = floor
    for seq in durable:
        if seq != expect:
            break
        top, expect = seq, seq + 1
    return top


def build_acks(plan: FlushPlan, outcome: FlushOutcome) -> list[OutboundAck]:
    """One acknowledgement per device of the plan's Tally v1 batches and dead letters."""
    floors = dict(plan.ack_from)
    durable = dict(outcome.durable)
    dups: dict[str, list[int]] = {}
    for device, seq in outcome.duplicates:
        dups.setdefault(device, []).append(seq)
    conflicts: dict[str, list[int]] = {}
    for device, seq in outcome.conflicting:
        conflicts.setdefault(device, []).append(seq)
    dead: dict[str, list[tuple[int, str]]] = {}
    for device, seq, reason in _dead_keys((*plan.dead_letters, *outcome.rejected)):
        dead.setdefault(device, []).append((seq, reason))
        floors[device] = min(floors.get(device, seq), seq)
    cbor = {b.batch.device for b in _v1_batches(plan.batches) if 0xA0 <= b.payload[0] <= 0xBF}
    out: list[OutboundAck] = []
    for device in sorted(floors):
        ack = Ack(
            device, floors[device], seq_ranges(durable.get(device, ())),
            seq_ranges(dups.get(device, ())), tuple(sorted(dead.get(device, ()))),
            seq_ranges(conflicts.get(device, ())),
        )
        enc = Encoding.CBOR if device in cbor else Encoding.JSON
        out.append(OutboundAck(ack_topic(device), encode_ack(ack, enc)))
    return out
