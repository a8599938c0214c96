"""Fuzzing the decoders: any bytes or any JSON/CBOR document give a batch or a ProtocolError."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.protocol import decode_batch
from collector.ingest.decoders import DecoderTable
from collector.ingest.messages import InboundMessage
from collector.ingest.planning import plan_flush
from tests.collector.ingest.bad_inputs import good_doc

NOW_MS = 1_764_000_000_000

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
_keys = st.sampled_from(
    ["v", "device", "seq", "sent", "agent", "series", "meter", "metric", "unit", "kind", "t0",
     "dt", "val"]
)


def _mutate(doc: dict[str, Any], path: list[str], value: object) -> dict[str, Any]:
    target: Any = doc
    for key in path[:-1]:
        target = target["series"][0] if key == "series" else target
    if isinstance(target, dict):
        target[path[-1]] = value
    return doc


def _decode(payload: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_batch(payload, topic_device="dev-f", now_ms=NOW_MS)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_other_than_protocol_error(payload: bytes) -> None:
    """Arbitrary bytes decode or raise ProtocolError, nothing else."""
    _decode(payload)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_json, st.booleans())
def test_random_documents_never_raise_other_than_protocol_error(doc: object, cbor: bool) -> None:
    """Arbitrary JSON/CBOR values decode or raise ProtocolError."""
    payload = cbor2.dumps(doc) if cbor else json.dumps(doc).encode()
    _decode(payload)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_keys, min_size=1, max_size=2), _json, st.booleans())
def test_mutated_valid_batches_never_raise_other_than_protocol_error(
    path: list[str], value: object, cbor: bool
) -> None:
    """A valid batch with one field replaced by any value decodes or raises ProtocolError."""
    doc = _mutate(good_doc("dev-f", 1, NOW_MS), path, value)
    _decode(cbor2.dumps(doc) if cbor else json.dumps(doc).encode())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.sampled_from(["tally/v1/d/readings", "tally/v1/d/status"]))
def test_planning_turns_any_payload_into_exactly_one_outcome(payload: bytes, topic: str) -> None:
    """plan_flush never raises and accounts for every message exactly once (or an empty status)."""
    plan = plan_flush([InboundMessage(topic, payload, 1, 1, NOW_MS)], DecoderTable())
    assert len(plan) == (0 if topic.endswith("status") and not payload else 1)
