"""Wire protocol v1 golden files: the fixed batch encodes byte-for-byte and decodes back.

``golden/batch_v1.json`` was written by hand from docs/protocol.md; ``golden/batch_v1.cbor`` is
the same map in CBOR, checked here against the JSON document independently of our encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import numpy as np

from agent.protocol import Batch, Encoding, Kind, Series, decode_batch, encode_batch

GOLDEN = Path(__file__).parent / "golden"
NOW_MS = 1_732_492_900_000


def arr(*xs: int) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(xs, dtype=np.int64)


def fixed_batch() -> Batch:
    t0 = 1_732_492_800_000
    return Batch(
        device="gw-0001", seq=1_732_492_800_000_000, sent_ms=1_732_492_861_000,
        agent_version="0.1.0",
        series=(
            Series("main", "energy_import", "kWh", Kind.CUMULATIVE,
                   arr(t0, t0 + 60_000, t0 + 120_000), np.array([1234.5, 1234.61, 1234.75])),
            Series("main", "power", "kW", Kind.GAUGE,
                   arr(t0, t0 + 60_000, t0 + 120_000), np.array([0.42, 3.1, -0.25])),
            Series("tap", "water_volume", "m³", Kind.CUMULATIVE,
                   arr(t0 + 30_000, t0 + 90_000), np.array([12.3456, 12.3711])),
            Series("router", "data_transferred", "GB", Kind.DELTA,
                   arr(t0 + 500), np.array([0.000125])),
        ),
    )


def test_json_encoding_matches_golden_bytes() -> None:
    """encode_batch(JSON) of the fixed batch is exactly the hand-written golden file."""
    assert encode_batch(fixed_batch(), Encoding.JSON) == (GOLDEN / "batch_v1.json").read_bytes()


def test_cbor_encoding_matches_golden_bytes() -> None:
    """encode_batch(CBOR) of the fixed batch is exactly the golden CBOR file."""
    assert encode_batch(fixed_batch(), Encoding.CBOR) == (GOLDEN / "batch_v1.cbor").read_bytes()


def test_cbor_golden_is_the_json_golden_as_cbor() -> None:
    """The CBOR golden holds the same map as the JSON golden (checked with cbor2 and json)."""
    as_cbor = cbor2.loads((GOLDEN / "batch_v1.cbor").read_bytes())
    assert as_cbor == json.loads((GOLDEN / "batch_v1.json").read_bytes())


def test_cbor_golden_starts_with_a_map_byte() -> None:
    """A CBOR envelope starts with a map header (0xa0-0xbf), a JSON one with '{'."""
    assert 0xA0 <= (GOLDEN / "batch_v1.cbor").read_bytes()[0] <= 0xBF
    assert (GOLDEN / "batch_v1.json").read_bytes()[:1] == b"{"


def test_golden_files_decode_to_the_fixed_batch() -> None:
    """Both golden files decode to the fixed batch."""
    for name in ("batch_v1.json", "batch_v1.cbor"):
        payload = (GOLDEN / name).read_bytes()
        assert decode_batch(payload, topic_device="gw-0001", now_ms=NOW_MS) == fixed_batch()
