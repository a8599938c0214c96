"""Properties of the wire protocol: decode(encode(b)) == b for JSON and CBOR; bad input is named."""

from __future__ import annotations

import json

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.protocol import (
    MAX_FUTURE_SKEW_MS,
    MIN_TIMESTAMP_MS,
    Batch,
    Encoding,
    Kind,
    Series,
    decode_batch,
    encode_batch,
)

NOW_MS = 1_764_000_000_000
ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,20}\Z")
units = st.sampled_from(["kWh", "m³", "GB", "kW", "°C", "%", "1", "m^3"])
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def series(draw: st.DrawFn, meter: str, metric: str) -> Series:
    n = draw(st.integers(1, 40))
    t0 = draw(st.integers(MIN_TIMESTAMP_MS, NOW_MS - 3 * 86_400_000))
    offsets = sorted(draw(st.lists(st.integers(0, 3 * 86_400_000), min_size=n, max_size=n)))
    values = draw(st.lists(finite, min_size=n, max_size=n))
    return Series(meter, metric, draw(units), draw(st.sampled_from(list(Kind))),
                  np.asarray([t0 + o for o in offsets], dtype=np.int64),
                  np.asarray(values, dtype=np.float64))


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    keys = draw(st.lists(st.tuples(ids, ids), min_size=1, max_size=6, unique=True))
    return Batch(
        device=draw(ids), seq=draw(st.integers(0, 2**63 - 1)),
        sent_ms=draw(st.integers(MIN_TIMESTAMP_MS, NOW_MS)),
        agent_version=draw(st.text(max_size=32)),
        series=tuple(draw(series(m, q)) for m, q in keys),
    )


@settings(max_examples=150, deadline=None)
@given(batches(), st.sampled_from(list(Encoding)))
def test_decode_inverts_encode(batch: Batch, encoding: Encoding) -> None:
    """Any valid batch survives an encode/decode round trip unchanged, in either encoding."""
    decoded = decode_batch(encode_batch(batch, encoding), topic_device=batch.device,
                           now_ms=NOW_MS)
    assert decoded == batch


@settings(max_examples=100, deadline=None)
@given(batches())
def test_encoding_is_deterministic(batch: Batch) -> None:
    """The same batch always gives the same bytes (a re-sent batch is identical)."""
    for enc in Encoding:
        assert encode_batch(batch, enc) == encode_batch(batch, enc)


GOOD = {"v": 1, "device": "d1", "seq": 7, "sent": NOW_MS, "agent": "x",
        "series": [{"meter": "m", "metric": "e", "unit": "kWh", "kind": "cumulative",
                    "t0": NOW_MS - 1000, "dt": [0, 500], "val": [1.0, 2.0]}]}


def with_series(**changes: object) -> dict[str, object]:
    series = [{**GOOD["series"][0], **changes}]  # type: ignore[index]
    return {**GOOD, "series": series}


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({**GOOD, "v": 2}, "v"),
        ({**GOOD, "device": "other"}, "device"),
        ({**GOOD, "seq": -1}, "seq"),
        ({**GOOD, "seq": "7"}, "seq"),
        ({**GOOD, "series": []}, "series"),
        (with_series(meter="m\n"), "series[0].meter"),  # "$" would let a trailing newline in
        (with_series(kind="counter"), "kind"),
        (with_series(unit="kilowatt hours"), "unit"),
        (with_series(dt=[0], val=[1.0, 2.0]), "val"),
        (with_series(dt=[0, -5]), "dt"),
        (with_series(t0=100), "t0"),
        (with_series(t0=NOW_MS + MAX_FUTURE_SKEW_MS + 1), "t0"),
        (with_series(val=[1.0, "2"]), "val"),
        ({**GOOD, "series": [GOOD["series"][0], GOOD["series"][0]]}, "series"),  # type: ignore[index]
    ],
)
def test_violations_name_their_field(doc: dict[str, object], field: str) -> None:
    """Each protocol violation raises ProtocolError carrying the offending field."""
    with pytest.raises(ProtocolError) as info:
        decode_batch(json.dumps(doc).encode(), topic_device="d1", now_ms=NOW_MS)
    assert info.value.field == field


@pytest.mark.parametrize("payload", [b"", b"[1,2]", b"\x01\x02", b"{not json", b"\xbf\xff\x00"])
def test_garbage_is_a_payload_error(payload: bytes) -> None:
    """Empty, non-object, truncated or non-JSON/CBOR payloads are rejected as 'payload'."""
    with pytest.raises(ProtocolError) as info:
        decode_batch(payload, topic_device="d1", now_ms=NOW_MS)
    assert info.value.field in {"payload", "v"}


def test_nan_in_json_is_rejected() -> None:
    """NaN is not a number on the wire."""
    payload = json.dumps(with_series(val=[1.0, float("nan")])).encode()
    with pytest.raises(ProtocolError):
        decode_batch(payload, topic_device="d1", now_ms=NOW_MS)


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_value_in_cbor_is_rejected(bad: float) -> None:
    """CBOR can carry infinities and NaN; the decoder names them, wherever they sit."""
    payload = cbor2.dumps(with_series(val=[1.0e308, bad]))
    with pytest.raises(ProtocolError, match="NaN or infinity") as info:
        decode_batch(payload, topic_device="d1", now_ms=NOW_MS)
    assert info.value.field == "val"


def test_huge_finite_values_whose_sum_overflows_are_accepted() -> None:
    """Values near the float limit are finite readings even when their sum is not."""
    payload = cbor2.dumps(with_series(val=[1.7e308, 1.7e308]))
    batch = decode_batch(payload, topic_device="d1", now_ms=NOW_MS)
    assert batch.series[0].values.tolist() == [1.7e308, 1.7e308]


@pytest.mark.parametrize(
    ("ts", "val"),
    [
        (np.array([MIN_TIMESTAMP_MS, MIN_TIMESTAMP_MS + 5], dtype=np.int64),
         np.array([1.5, 2.5])),
        (np.array([MIN_TIMESTAMP_MS, 0, MIN_TIMESTAMP_MS + 5], dtype=np.int64)[::2],
         np.array([1.5, 0.0, 2.5])[::2]),
        ([MIN_TIMESTAMP_MS, MIN_TIMESTAMP_MS + 5], (1.5, 2.5)),
    ],
    ids=["numpy", "numpy-strided", "sequences"],
)
def test_series_columns_become_arrays(ts: object, val: object) -> None:
    """Whatever sequence a series is given, it holds array('q') and array('d') of its values."""
    s = Series("m1", "energy", "kWh", Kind.CUMULATIVE, ts, val)  # type: ignore[arg-type]
    assert (s.ts_ms.typecode, s.values.typecode) == ("q", "d")
    assert (s.ts_ms.tolist(), s.values.tolist()) == (
        [MIN_TIMESTAMP_MS, MIN_TIMESTAMP_MS + 5], [1.5, 2.5])


def test_series_with_columns_of_different_lengths_is_refused() -> None:
    with pytest.raises(ProtocolError, match="2 timestamps but 1 values"):
        Series("m1", "energy", "kWh", Kind.CUMULATIVE, [MIN_TIMESTAMP_MS, MIN_TIMESTAMP_MS],
               [1.0])  # type: ignore[arg-type]
