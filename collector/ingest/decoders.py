"""Which decode function handles which topic: a table of MQTT topic filters.

A batch decoder is ``(topic, payload, now_ms) -> Batch`` and raises ``ProtocolError`` for a bad
message. The default table maps ``tally/v1/+/readings`` to the Tally v1 decoder; other device
families (e.g. SenML) are added with :meth:`DecoderTable.with_decoder`. Status topics
(``tally/v1/+/status``) carry retained JSON objects and are parsed by :func:`decode_status`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from paho.mqtt.client import topic_matches_sub

from agent.errors import ProtocolError
from agent.protocol import Batch, decode_batch, device_from_topic, readings_topic

from .messages import StatusUpdate

__all__ = [
    "READINGS_FILTER",
    "STATUS_FILTER",
    "BatchDecoder",
    "DecoderTable",
    "decode_status",
    "strip_shared_prefix",
    "tally_v1_decoder",
]

BatchDecoder = Callable[[str, bytes, int], Batch]

READINGS_FILTER: Final = "tally/v1/+/readings"
STATUS_FILTER: Final = "tally/v1/+/status"
_STATUS_TS_MIN_S: Final = 946_684_800  # 2000-01-01
_STATUS_TS_MAX_S: Final = 32_503_680_000  # 3000-01-01
MAX_STATUS_BYTES: Final = 65_536


def tally_v1_decoder(topic: str, payload: bytes, now_ms: int) -> Batch:
    """Decode a Tally v1 batch published on ``tally/v1/<device>/readings``."""
    return decode_batch(payload, topic_device=device_from_topic(topic), now_ms=now_ms)


def strip_shared_prefix(topic_filter: str) -> str:
    """``$share/<group>/a/b`` → ``a/b``; other filters unchanged."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) == 3 and parts[1] and parts[2]:
            return parts[2]
    return topic_filter


@dataclass(frozen=True, slots=True)
class DecoderTable:
    """Topic filter → batch decoder, first match wins; plus the status topic filters."""

    batch_decoders: tuple[tuple[str, BatchDecoder], ...] = ((READINGS_FILTER, tally_v1_decoder),)
    status_filters: tuple[str, ...] = (STATUS_FILTER,)

    def with_decoder(self, topic_filter: str, decoder: BatchDecoder) -> DecoderTable:
        """A table that also decodes ``topic_filter`` with ``decoder``, checked first."""
        entry = (strip_shared_prefix(topic_filter), decoder)
        return DecoderTable((entry, *self.batch_decoders), self.status_filters)

    def batch_decoder(self, topic: str) -> BatchDecoder | None:
        for topic_filter, decoder in self.batch_decoders:
            if topic_matches_sub(topic_filter, topic):
                return decoder
        return None

    def is_status(self, topic: str) -> bool:
        return any(topic_matches_sub(f, topic) for f in self.status_filters)


def _status_device(topic: str) -> str:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "tally" or parts[1] != "v1" or parts[3] != "status":
        raise ProtocolError(f"topic {topic!r:.120} is not tally/v1/<device>/status", field="topic")
    readings_topic(parts[2])  # validates the device id
    return parts[2]


def _first(doc: dict[str, object], keys: tuple[str, ...], kind: type) -> object | None:
    for key in keys:
        value = doc.get(key)
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    return None


def decode_status(topic: str, payload: bytes, received_ms: int) -> StatusUpdate | None:
    """Parse a status message; ``None`` for an empty payload (a cleared retained message)."""
    device = _status_device(topic)
    if not payload:
        return None
    if len(payload) > MAX_STATUS_BYTES:
        raise ProtocolError(f"status of {len(payload)} bytes exceeds {MAX_STATUS_BYTES}")
    try:
        doc = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"status is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ProtocolError("status must be a JSON object")
    if _has_nul(doc):
        raise ProtocolError("status holds a U+0000 character")
    state = _first(doc, ("state", "status"), str)
    if state is None and isinstance(doc.get("online"), bool):
        state = "online" if doc["online"] else "offline"
    depth = _first(doc, ("buffer_depth", "buffered", "backlog", "pending"), int)
    if isinstance(depth, int) and not 0 <= depth < 2**63:
        depth = None
    return StatusUpdate(
        device=device,
        received_ms=received_ms,
        state=str(state)[:64] if state is not None else None,
        buffer_depth=depth if isinstance(depth, int) else None,
        document=json.dumps(doc, separators=(",", ":"), allow_nan=False),
        sent_ms=_sent_ms(doc),
    )


def _sent_ms(doc: dict[str, object]) -> int | None:
    """The document's own time (``ts``/``timestamp``, Unix ms, or s for small values) when
    plausible (2000–2999), else ``None``."""
    ts = _first(doc, ("ts", "timestamp"), int)
    if not isinstance(ts, int):
        return None
    if _STATUS_TS_MIN_S <= ts < _STATUS_TS_MAX_S:
        ts *= 1000
    return ts if _STATUS_TS_MIN_S * 1000 <= ts < _STATUS_TS_MAX_S * 1000 else None


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


