"""SenML (RFC 8428): fixtures are the RFC's own examples, named by section."""

from __future__ import annotations

import contextlib
import json

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.protocol import Encoding, Kind, decode_batch, encode_batch
from firmware_bridge.errors import DecodeError
from firmware_bridge.senml.readings import SENML_SEQ_BASE, senml_readings, senml_seq, senml_to_batch
from firmware_bridge.senml.records import CBOR_LABELS, resolve

NOW_S = 1_767_225_600.0
NOW_MS = int(NOW_S * 1000)

RFC8428_5_1_1_SINGLE_DATAPOINT = b'[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]'
RFC8428_5_1_2_MULTIPLE_DATAPOINTS = (
    b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},'
    b'{"n":"current","u":"A","v":1.2}]'
)
RFC8428_5_1_2_MULTIPLE_DATAPOINTS_WITH_TIME = (
    b'[{"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,"bu":"A","bver":5,'
    b'"n":"voltage","u":"V","v":120.1},{"n":"current","t":-5,"v":1.2},'
    b'{"n":"current","t":-4,"v":1.3},{"n":"current","t":-3,"v":1.4},'
    b'{"n":"current","t":-2,"v":1.5},{"n":"current","t":-1,"v":1.6},{"n":"current","v":1.7}]'
)
RFC8428_5_1_3_MULTIPLE_MEASUREMENTS = (
    b'[{"bn":"urn:dev:ow:10e2073a01080063","bt":1.320067464e+09,"bu":"%RH","v":20},'
    b'{"u":"lon","v":24.30621},{"u":"lat","v":60.07965},{"t":60,"v":20.3},'
    b'{"u":"lon","t":60,"v":24.30622},{"u":"lat","t":60,"v":60.07965},{"t":120,"v":20.7},'
    b'{"u":"lon","t":120,"v":24.30623},{"u":"lat","t":120,"v":60.07966},'
    b'{"u":"%EL","t":150,"v":98},{"t":180,"v":21.2},{"u":"lon","t":180,"v":24.30628},'
    b'{"u":"lat","t":180,"v":60.07967}]'
)
RFC8428_5_1_4_RESOLVED = (
    b'[{"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067464e+09,"v":20},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067464e+09,"v":24.30621},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067464e+09,"v":60.07965},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067524e+09,"v":20.3},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067524e+09,"v":24.30622},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067524e+09,"v":60.07965},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067584e+09,"v":20.7},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067584e+09,"v":24.30623},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067584e+09,"v":60.07966},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"%EL","t":1.320067614e+09,"v":98},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067644e+09,"v":21.2},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067644e+09,"v":24.30628},'
    b'{"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067644e+09,"v":60.07967}]'
)
RFC8428_5_1_5_MULTIPLE_DATA_TYPES = (
    b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1},'
    b'{"n":"label","vs":"Machine Room"},{"n":"open","vb":false},{"n":"nfc-reader","vd":"aGkgCg"}]'
)
RFC8428_5_1_6_COLLECTION_OF_RESOURCES = (
    b'[{"bn":"2001:db8::2/","bt":1.320078429e+09,"n":"temperature","u":"Cel","v":25.2},'
    b'{"n":"humidity","u":"%RH","v":30},'
    b'{"bn":"2001:db8::1/","n":"temperature","u":"Cel","v":12.3},'
    b'{"n":"humidity","u":"%RH","v":67}]'
)
RFC8428_5_1_7_SETTING_AN_ACTUATOR = (
    b'[{"bn":"urn:dev:ow:10e2073a01080063:"},{"n":"temp","u":"Cel","v":23.1},'
    b'{"n":"heat","u":"/","v":1},{"n":"fan","u":"/","v":0}]'
)


def _to_cbor(payload: bytes) -> bytes:
    label = {name: lab for lab, name in CBOR_LABELS.items()}
    return cbor2.dumps([{label[k]: v for k, v in r.items()} for r in json.loads(payload)])


def test_5_1_1_single_datapoint_is_now() -> None:
    """§5.1.1: no time means 'now'; Cel becomes °C; the whole name is the metric."""
    [r] = senml_readings(RFC8428_5_1_1_SINGLE_DATAPOINT, NOW_MS)
    assert (r.meter, r.metric, r.unit, r.kind, r.value, r.ts_ms) == (
        "senml",
        "urn:dev:ow:10e2073a01080063",
        "°C",
        Kind.GAUGE,
        23.1,
        NOW_MS,
    )


def test_5_1_2_base_name_splits_meter_and_metric() -> None:
    """§5.1.2: bn is the meter, n the metric."""
    got = [
        (r.meter, r.metric, r.unit, r.value)
        for r in senml_readings(RFC8428_5_1_2_MULTIPLE_DATAPOINTS, NOW_MS)
    ]
    assert got == [
        ("urn:dev:ow:10e2073a01080063", "voltage", "V", 120.1),
        ("urn:dev:ow:10e2073a01080063", "current", "A", 1.2),
    ]


def test_5_1_2_base_time_and_relative_offsets() -> None:
    """§5.1.2: bt plus negative t gives the five earlier seconds; bu applies where u is absent."""
    records = resolve(RFC8428_5_1_2_MULTIPLE_DATAPOINTS_WITH_TIME, NOW_S)
    assert [round(r.time_s - 1276020076.001, 6) for r in records] == [0, -5, -4, -3, -2, -1, 0]
    assert [r.unit for r in records] == ["V", "A", "A", "A", "A", "A", "A"]
    assert [r.value for r in records][1:] == [1.2, 1.3, 1.4, 1.5, 1.6, 1.7]


def test_5_1_3_and_5_1_4_resolve_to_the_same_records() -> None:
    """§5.1.3 resolves to exactly the records §5.1.4 lists."""
    ours = [
        (r.name, r.unit, r.time_s, r.value)
        for r in resolve(RFC8428_5_1_3_MULTIPLE_MEASUREMENTS, NOW_S)
    ]
    theirs = [(r.name, r.unit, r.time_s, r.value) for r in resolve(RFC8428_5_1_4_RESOLVED, NOW_S)]
    assert ours == theirs
    assert len(ours) == 13


def test_5_1_3_unnamed_records_are_named_by_unit() -> None:
    """Records named only by the base name get a metric from their unit (a series per unit)."""
    metrics = {r.metric for r in senml_readings(RFC8428_5_1_3_MULTIPLE_MEASUREMENTS, NOW_MS)}
    assert metrics == {"RH", "lon", "lat", "EL"}


def test_5_1_5_non_numeric_values_are_skipped() -> None:
    """§5.1.5: string, boolean and data values are not readings; the temperature is."""
    assert [r.metric for r in senml_readings(RFC8428_5_1_5_MULTIPLE_DATA_TYPES, NOW_MS)] == ["temp"]


def test_5_1_6_base_name_changes_mid_pack() -> None:
    """§5.1.6: the last record uses the 3rd record's bn and the 1st record's bt."""
    got = senml_readings(RFC8428_5_1_6_COLLECTION_OF_RESOURCES, NOW_MS)
    assert [(r.meter, r.metric) for r in got] == [
        ("2001:db8::2", "temperature"),
        ("2001:db8::2", "humidity"),
        ("2001:db8::1", "temperature"),
        ("2001:db8::1", "humidity"),
    ]
    assert {r.ts_ms for r in got} == {1_320_078_429_000}


def test_5_1_7_base_only_record_and_ratio_unit() -> None:
    """§5.1.7: a record with only bn yields nothing; unit '/' becomes '1'."""
    got = senml_readings(RFC8428_5_1_7_SETTING_AN_ACTUATOR, NOW_MS)
    assert [(r.metric, r.unit, r.value) for r in got] == [
        ("temp", "°C", 23.1),
        ("heat", "1", 1.0),
        ("fan", "1", 0.0),
    ]


@pytest.mark.parametrize(
    "payload",
    [
        RFC8428_5_1_1_SINGLE_DATAPOINT,
        RFC8428_5_1_2_MULTIPLE_DATAPOINTS_WITH_TIME,
        RFC8428_5_1_3_MULTIPLE_MEASUREMENTS,
        RFC8428_5_1_6_COLLECTION_OF_RESOURCES,
    ],
)
def test_cbor_with_integer_labels_equals_json(payload: bytes) -> None:
    """§6: the CBOR encoding with integer labels resolves to the same records as the JSON."""
    assert resolve(_to_cbor(payload), NOW_S) == resolve(payload, NOW_S)


def test_sum_is_cumulative_and_base_sum_applies() -> None:
    """'s' plus 'bs' is a cumulative register; 'v' plus 'bv' a gauge; both present → '_sum'."""
    pack = b'[{"bn":"m1:","bs":1000,"bv":10,"n":"energy","u":"kWh","s":2.5,"v":1}]'
    got = {r.metric: r for r in senml_readings(pack, NOW_MS)}
    assert (got["energy"].kind, got["energy"].value) == (Kind.GAUGE, 11.0)
    assert (got["energy_sum"].kind, got["energy_sum"].value) == (Kind.CUMULATIVE, 1002.5)


def test_relative_time_threshold() -> None:
    """Times below 2**28 are relative to now; at 2**28 and above they are absolute."""
    rel = resolve(b'[{"n":"a","t":268435455,"v":1}]', NOW_S)[0].time_s
    ab = resolve(b'[{"n":"a","t":268435456,"v":1}]', NOW_S)[0].time_s
    assert rel == NOW_S + 268435455
    assert ab == 268435456


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b'[{"bver":11,"n":"a","v":1}]', "version"),
        (b'[{"n":"a","v":1,"foo_":2}]', "must-understand"),
        (b'[{"v":1}]', "name"),
        (b'[{"n":"-bad","v":1}]', "name"),
        (b'[{"n":"a","v":"1"}]', "number"),
        (b'{"n":"a","v":1}', "array"),
        (b"[1]", "map"),
        (b"\x00\x01", "neither"),
        (b"", "empty"),
    ],
)
def test_invalid_packs(payload: bytes, fragment: str) -> None:
    """Each invalid pack raises DecodeError with the reason."""
    with pytest.raises(DecodeError, match=fragment):
        resolve(payload, NOW_S)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    """Random bytes (JSON-ish or CBOR-ish) never raise anything but DecodeError."""
    for payload in (data, b"[" + data, bytes([0x81]) + data):
        with contextlib.suppress(DecodeError):
            senml_readings(payload, NOW_MS)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
records = st.dictionaries(
    st.sampled_from(["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "s", "t", "vs"]),
    json_scalars,
    max_size=6,
)


@given(st.lists(records, max_size=5))
@settings(max_examples=300)
def test_structured_random_packs_raise_only_decode_errors(pack: list[dict[str, object]]) -> None:
    """Well-formed JSON with arbitrary field types never raises anything but DecodeError."""
    for payload in (json.dumps(pack).encode(), cbor2.dumps(pack)):
        with contextlib.suppress(DecodeError):
            senml_readings(payload, NOW_MS)


@given(st.lists(records, max_size=5))
@settings(max_examples=200)
def test_random_packs_to_batch_raise_only_decode_errors(pack: list[dict[str, object]]) -> None:
    """senml_to_batch never raises anything but DecodeError, whatever the pack holds."""
    for payload in (json.dumps(pack).encode(), cbor2.dumps(pack)):
        with contextlib.suppress(DecodeError):
            senml_to_batch("tally/v1/dev-1/senml", payload, NOW_MS)


def test_batch_from_mqtt_topic_roundtrips() -> None:
    """senml_to_batch builds a protocol batch that encodes and decodes unchanged."""
    batch = senml_to_batch("tally/v1/plug-7/senml", RFC8428_5_1_2_MULTIPLE_DATAPOINTS, NOW_MS)
    assert batch.device == "plug-7"
    for enc in Encoding:
        again = decode_batch(encode_batch(batch, enc), topic_device="plug-7", now_ms=NOW_MS)
        assert again == batch


def test_batch_seq_is_deterministic_and_outside_agent_range() -> None:
    """The same payload always gets the same seq, in [2**62, 2**63); another payload another seq."""
    a = senml_to_batch("tally/v1/d/senml", RFC8428_5_1_1_SINGLE_DATAPOINT, NOW_MS).seq
    b = senml_to_batch("tally/v1/d/senml", RFC8428_5_1_1_SINGLE_DATAPOINT, NOW_MS + 5000).seq
    c = senml_to_batch("tally/v1/d/senml", RFC8428_5_1_2_MULTIPLE_DATAPOINTS, NOW_MS).seq
    assert a == b != c
    assert SENML_SEQ_BASE <= a < 2**63


@given(st.binary(max_size=64))
def test_seq_range_property(payload: bytes) -> None:
    """Every seq fits a signed 64-bit column and sits above any agent counter."""
    assert 2**62 <= senml_seq(payload) < 2**63


@pytest.mark.parametrize(
    ("topic", "payload", "fragment"),
    [
        ("tally/v1/d/readings", RFC8428_5_1_1_SINGLE_DATAPOINT, "senml"),
        ("tally/v1/bad device/senml", RFC8428_5_1_1_SINGLE_DATAPOINT, "device"),
        (
            "tally/v1/d/senml",
            RFC8428_5_1_5_MULTIPLE_DATA_TYPES.replace(b'"v":23.1', b'"vs":"x"'),
            "no numeric",
        ),
        ("tally/v1/d/senml", b'[{"n":"a","u":"V","v":1},{"n":"a","u":"A","v":2}]', "two different"),
        ("tally/v1/d/senml", b'[{"n":"a","v":1,"t":1900000000000}]', "future"),
    ],
)
def test_batch_rejections(topic: str, payload: bytes, fragment: str) -> None:
    """Bad topics, empty packs, unit clashes and far-future times raise DecodeError."""
    with pytest.raises(DecodeError, match=fragment):
        senml_to_batch(topic, payload, NOW_MS)
