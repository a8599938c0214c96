"""SenML packs published straight to MQTT by devices that cannot run the agent.

Topic ``tally/v1/<device>/senml``; the pack (RFC 8428, JSON or CBOR) is decoded by the firmware
bridge into an ordinary protocol batch whose ``seq`` is a deterministic hash of the payload in
``[2**62, 2**63)`` (agent seqs stay far below), so a redelivered pack is deduplicated like any
batch. The bridge's ``DecodeError`` is translated here, once, into the ``ProtocolError`` that
ingest turns into a dead letter.
"""

from __future__ import annotations

from typing import Final

from agent.errors import ProtocolError
from agent.protocol import Batch
from firmware_bridge.errors import DecodeError
from firmware_bridge.senml.readings import senml_to_batch

__all__ = ["SENML_FILTER", "senml_decoder"]

SENML_FILTER: Final = "tally/v1/+/senml"


def senml_decoder(topic: str, payload: bytes, now_ms: int) -> Batch:
    """Decode a SenML pack into a batch; any defect raises ``ProtocolError`` with the reason."""
    try:
        return senml_to_batch(topic, payload, now_ms)
    except DecodeError as exc:
        raise ProtocolError(f"SenML: {exc}", field="payload") from exc
