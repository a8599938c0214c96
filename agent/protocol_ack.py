"""Tally wire protocol v1, part two: the collector's end-to-end acknowledgement.

Pure code, like ``agent.protocol``: bytes in, validated values out (and back). Described for
firmware writers in ``docs/protocol.md``; golden files in ``tests/protocol/golden``.

Topic::

    tally/v1/<device_id>/ack    published by the collector (QoS 1, retained), read by the device

After the database transaction that stores a flush has committed, the collector publishes one
acknowledgement per device of the flush. Every statement in it is final (a committed batch
stays committed), so the agent can act on any acknowledgement it receives, live or retained,
in any order, from any of several collectors::

    {"v": 1, "device": "gw-1", "from": 42,
     "ok": [[42, 47], [49, 49]],          # seqs >= from that are durable in the database
     "dup": [[45, 45]],                   # of this flush's batches: already stored before
     "conflict": [[46, 46]],              # of this flush's batches: seq stored with other readings
     "dead": [[48, "series gw-1/main/energy_import is registered as unit=kWh ..."]]}

``ok`` lists, as inclusive ranges, the batch seqs of the device that are stored for good, from
``from`` (the ``low`` the agent put in its batch: the lowest seq it still holds) upwards, at the
moment of the commit; it is the watermark that the retained copy hands to a reconnecting agent.
``dup`` marks the batches of this flush that were duplicates of stored ones (also in ``ok``),
``conflict`` the batches of this flush whose seq is already stored with *different* readings (a
device whose seqs went backwards, or a forged batch): the stored batch stays, this copy is kept
aside for staff and never counted, and re-sending it would only conflict again.
``dead`` the batches of this flush that were dead-lettered, with the reason: they are never
stored, and re-sending them would only dead-letter them again. A seq in none of the three lists
is not confirmed (yet): the agent keeps it and sends it again after a timeout or a reconnect.
The same map is accepted in CBOR (first byte 0xa0-0xbf); the collector answers in the encoding
of the batches it acknowledges.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from agent.errors import ProtocolError
from agent.protocol import PROTOCOL_VERSION, TOPIC_PREFIX, Encoding, _check_id, _load

__all__ = [
    "ACK_FILTER",
    "MAX_ACK_BYTES",
    "MAX_ACK_RANGES",
    "Ack",
    "Outcome",
    "ack_topic",
    "decode_ack",
    "encode_ack",
    "peek_batch_key",
    "seq_ranges",
]

ACK_FILTER: Final = f"{TOPIC_PREFIX}/+/ack"
MAX_ACK_BYTES: Final = 65_536
MAX_ACK_RANGES: Final = 1024
MAX_REASON_CHARS: Final = 200
_SEQ_MAX: Final = 2**63 - 1

SeqRange = tuple[int, int]


class Outcome(enum.StrEnum):
    """What became of a batch the collector acknowledged."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledgement message: durable seq ranges, this flush's duplicates and dead letters."""

    device: str
    from_seq: int
    ok: tuple[SeqRange, ...]
    dup: tuple[SeqRange, ...] = ()
    dead: tuple[tuple[int, str], ...] = ()
    conflict: tuple[SeqRange, ...] = ()

    def __post_init__(self) -> None:
        _check_id("device", self.device)
        if not 0 <= self.from_seq <= _SEQ_MAX:
            raise ProtocolError(f"'from'={self.from_seq} is not a seq", field="from")
        for name, ranges in (("ok", self.ok), ("dup", self.dup), ("conflict", self.conflict)):
            for lo, hi in ranges:
                if not 0 <= lo <= hi <= _SEQ_MAX:
                    raise ProtocolError(f"{name!r} range [{lo}, {hi}] is not ordered", field=name)
        if len(self.ok) + len(self.dup) + len(self.conflict) + len(self.dead) > MAX_ACK_RANGES:
            raise ProtocolError(f"more than {MAX_ACK_RANGES} ranges", field="ok")

    def outcome(self, seq: int) -> Outcome | None:
        """What this message says about ``seq``; None when it says nothing (not confirmed)."""
        if any(s == seq for s, _ in self.dead):
            return Outcome.DEAD_LETTERED
        if _within(seq, self.conflict):
            return Outcome.CONFLICT
        if _within(seq, self.dup):
            return Outcome.DUPLICATE
        if _within(seq, self.ok):
            return Outcome.STORED
        return None

    def outcomes(self, seqs: Iterable[int]) -> dict[int, Outcome]:
        """The confirmed ones among ``seqs`` and their outcome."""
        out: dict[int, Outcome] = {}
        for seq in seqs:
            o = self.outcome(seq)
            if o is not None:
                out[seq] = o
        return out


def _within(seq: int, ranges: tuple[SeqRange, ...]) -> bool:
    return any(lo <= seq <= hi for lo, hi in ranges)


def ack_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}/{_check_id('device', device)}/ack"


def seq_ranges(seqs: Iterable[int]) -> tuple[SeqRange, ...]:
    """Sorted, merged inclusive ranges of a set of seqs: ``[1, 2, 3, 7] -> ((1, 3), (7, 7))``."""
    out: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return tuple((lo, hi) for lo, hi in out)


def encode_ack(ack: Ack, encoding: Encoding = Encoding.JSON) -> bytes:
    """Encode an acknowledgement; the result decodes back to an equal ``Ack``."""
    doc: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "device": ack.device,
        "from": ack.from_seq,
        "ok": [[lo, hi] for lo, hi in ack.ok],
    }
    if ack.dup:
        doc["dup"] = [[lo, hi] for lo, hi in ack.dup]
    if ack.conflict:
        doc["conflict"] = [[lo, hi] for lo, hi in ack.conflict]
    if ack.dead:
        doc["dead"] = [[seq, reason[:MAX_REASON_CHARS]] for seq, reason in ack.dead]
    if encoding is Encoding.CBOR:
        return cbor2.dumps(doc)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _seq(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _SEQ_MAX:
        raise ProtocolError(f"{field!r} must hold seqs (integers >= 0), got {value!r:.40}",
                            field=field)
    return value


def _ranges(value: object, field: str) -> tuple[SeqRange, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError(f"{field!r} must be an array of [first, last] pairs", field=field)
    out: list[SeqRange] = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ProtocolError(f"{field!r} must be an array of [first, last] pairs",
                                field=field)
        out.append((_seq(item[0], field), _seq(item[1], field)))
    return tuple(out)


def _dead(value: object) -> tuple[tuple[int, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError("'dead' must be an array of [seq, reason] pairs", field="dead")
    out: list[tuple[int, str]] = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[1], str):
            raise ProtocolError("'dead' must be an array of [seq, reason] pairs", field="dead")
        out.append((_seq(item[0], "dead"), item[1][:MAX_REASON_CHARS]))
    return tuple(out)


def decode_ack(payload: bytes, *, topic_device: str | None) -> Ack:
    """Decode and validate an acknowledgement; ProtocolError with a reason otherwise."""
    if len(payload) > MAX_ACK_BYTES:
        raise ProtocolError(f"ack of {len(payload)} bytes exceeds {MAX_ACK_BYTES}")
    doc = _load(payload)
    if not isinstance(doc, dict):
        raise ProtocolError("ack must be an object/map")
    if doc.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {doc.get('v')!r:.20}", field="v")
    device = _check_id("device", doc.get("device"))
    if topic_device is not None and device != topic_device:
        raise ProtocolError(
            f"device {device!r} in ack differs from {topic_device!r} in topic", field="device"
        )
    return Ack(device, _seq(doc.get("from"), "from"), _ranges(doc.get("ok"), "ok"),
               _ranges(doc.get("dup"), "dup"), _dead(doc.get("dead")),
               _ranges(doc.get("conflict"), "conflict"))


def peek_batch_key(payload: bytes) -> int | None:
    """The ``seq`` of a batch envelope that failed validation, if it can be read at all.

    Lets the collector acknowledge a dead-lettered batch as such (so the agent stops re-sending
    it); None when the payload is not even a map with an integer seq.
    """
    try:
        doc = _load(payload)
    except ProtocolError:
        return None
    seq = doc.get("seq") if isinstance(doc, dict) else None
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= _SEQ_MAX:
        return None
    return seq
