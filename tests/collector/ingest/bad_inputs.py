"""A table of malformed messages, each with the field its dead letter must name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cbor2


@dataclass(frozen=True)
class BadInput:
    name: str
    topic: str
    payload: bytes
    field: str


def good_doc(device: str, seq: int, now_ms: int) -> dict[str, Any]:
    return {
        "v": 1, "device": device, "seq": seq, "sent": now_ms, "agent": "t",
        "series": [{"meter": "main", "metric": "energy", "unit": "kWh", "kind": "cumulative",
                    "t0": now_ms - 60_000, "dt": [0, 30_000], "val": [1.5, 2.5]}],
    }


def _j(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _with(dev: str, now_ms: int, **changes: Any) -> dict[str, Any]:
    doc = good_doc(dev, 1, now_ms)
    for key, value in changes.items():
        if key.startswith("s_"):
            doc["series"][0][key[2:]] = value
        else:
            doc[key] = value
    return doc


def bad_inputs(device: str, now_ms: int) -> list[BadInput]:
    """Malformed messages for ``tally/v1/<device>/readings`` (and one bad topic)."""
    topic = f"tally/v1/{device}/readings"
    nan_json = _j(good_doc(device, 1, now_ms)).replace(b"[1.5, 2.5]", b"[NaN, 2.5]")
    inf_json = _j(good_doc(device, 1, now_ms)).replace(b"[1.5, 2.5]", b"[1e999, 2.5]")
    many = _with(device, now_ms, s_dt=list(range(20_001)), s_val=[1.0] * 20_001)
    rows: list[tuple[str, str, bytes, str]] = [
        ("empty", topic, b"", "payload"),
        ("not json or cbor", topic, b"hello", "payload"),
        ("broken json", topic, b"{not json", "payload"),
        ("broken cbor", topic, b"\xa2\x61v\x01", "payload"),
        ("json array", topic, b"[1, 2]", "payload"),
        ("json scalar in object position", topic, b" 42", "payload"),
        ("version 2", topic, _j(_with(device, now_ms, v=2)), "v"),
        ("seq is a string", topic, _j(_with(device, now_ms, seq="1")), "seq"),
        ("seq negative", topic, _j(_with(device, now_ms, seq=-1)), "seq"),
        ("seq is bool", topic, cbor2.dumps(_with(device, now_ms, seq=True)), "seq"),
        ("values are strings", topic, _j(_with(device, now_ms, s_val=["1", "2"])), "val"),
        ("NaN value", topic, nan_json, "payload"),
        ("infinite value", topic, inf_json, "val"),
        ("ts before 2000", topic, _j(_with(device, now_ms, s_t0=900_000_000_000)), "t0"),
        ("ts 2 days ahead", topic,
         _j(_with(device, now_ms, s_t0=now_ms + 2 * 86_400_000)), "t0"),
        ("offset pushes ts ahead", topic,
         _j(_with(device, now_ms, s_dt=[0, 3 * 86_400_000])), "dt"),
        ("device differs from topic", topic, _j(_with(device, now_ms, device="other")),
         "device"),
        ("bad device in topic", "tally/v1/bad dev!/readings",
         _j(_with(device, now_ms, device="bad dev!")), "device"),
        ("oversized", topic, b"{" + b" " * (1_048_577) + b"}", "payload"),
        ("too many readings", topic, _j(many), "series"),
        ("empty series list", topic, _j(_with(device, now_ms, series=[])), "series"),
        ("series without readings", topic, _j(_with(device, now_ms, s_dt=[], s_val=[])), "dt"),
        ("offsets and values differ", topic, _j(_with(device, now_ms, s_val=[1.0])), "val"),
        ("unknown kind", topic, _j(_with(device, now_ms, s_kind="rate")), "kind"),
        ("bad unit", topic, _j(_with(device, now_ms, s_unit="k W h")), "unit"),
        ("series not an object", topic, _j(_with(device, now_ms, series=[1])), "series"),
    ]
    return [BadInput(*r) for r in rows]
