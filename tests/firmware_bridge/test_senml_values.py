"""SenML value rules: one value field, the base value alone, non-numeric values, RFC 8798
secondary units."""

from __future__ import annotations

import cbor2
import pytest

from firmware_bridge.errors import DecodeError
from firmware_bridge.senml.readings import senml_readings
from firmware_bridge.senml.records import resolve

NOW_S = 1_767_225_600.0
NOW_MS = int(NOW_S * 1000)
MIXED = (
    b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1},'
    b'{"n":"label","vs":"Machine Room"},{"n":"open","vb":false},{"n":"nfc-reader","vd":"aGkgCg"}]'
)


@pytest.mark.parametrize(
    "record",
    [
        b'{"n":"a","v":1,"vs":"x"}',
        b'{"n":"a","v":1,"vb":true}',
        b'{"n":"a","vs":"x","vd":"aGk"}',
    ],
)
def test_a_record_with_two_value_fields_is_an_error(record: bytes) -> None:
    """RFC 8428 §4.2: exactly one value field per record."""
    with pytest.raises(DecodeError, match="more than one value field"):
        resolve(b"[" + record + b"]", NOW_S)


def test_two_value_fields_are_an_error_in_cbor_too() -> None:
    """The same rule for CBOR labels 2 (v) and 3 (vs)."""
    with pytest.raises(DecodeError, match="more than one value field"):
        resolve(cbor2.dumps([{0: "a", 2: 1.0, 3: "x"}]), NOW_S)


def test_a_record_without_a_value_takes_the_base_value() -> None:
    """No v: the value is bv (5.0), and 0 where no bv is in force; a value and a sum together
    stay allowed."""
    got = resolve(b'[{"bn":"m:","bv":5,"n":"a","u":"V"},{"n":"b","u":"V","s":2}]', NOW_S)
    assert [(r.name, r.value, r.sum) for r in got] == [("m:a", 5.0, None), ("m:b", None, 2.0)]
    (plain,) = resolve(b'[{"n":"c","u":"V"}]', NOW_S)
    assert plain.value == 0.0


def test_a_header_record_of_base_fields_is_not_a_reading() -> None:
    """RFC 8428 §5.1.7's first record ({"bn": ...}) only sets the base name."""
    pack = b'[{"bn":"urn:dev:ow:10e2073a01080063:"},{"n":"temp","u":"Cel","v":23.1}]'
    assert [r.name for r in resolve(pack, NOW_S)] == ["urn:dev:ow:10e2073a01080063:temp"]


def test_string_boolean_and_data_values_are_kept_by_the_decoder() -> None:
    """resolve keeps vs/vb/vd in text/flag/data, without a numeric value."""
    got = {
        r.name.rsplit(":", 1)[1]: (r.text, r.flag, r.data, r.value) for r in resolve(MIXED, NOW_S)
    }
    assert got == {
        "temp": (None, None, None, 23.1),
        "label": ("Machine Room", None, None, None),
        "open": (None, False, None, None),
        "nfc-reader": (None, None, "aGkgCg", None),
    }


def test_non_numeric_values_are_skipped_or_refused_by_choice() -> None:
    """Readings skip them by default and refuse the pack when asked, naming the record."""
    assert [r.metric for r in senml_readings(MIXED, NOW_MS)] == ["temp"]
    with pytest.raises(DecodeError, match="string value"):
        senml_readings(MIXED, NOW_MS, non_numeric="refuse")


@pytest.mark.parametrize(
    ("unit", "value", "want_unit", "want_value"),
    [
        ("mA", 250.0, "A", 0.25),
        ("kVA", 1.5, "VA", 1500.0),
        ("km/h", 36.0, "m/s", 10.0),
        ("Ah", 2.0, "C", 7200.0),
        ("kWh", 1.5, "kWh", 1.5),  # rated in kWh directly: kept
        ("W", 7.0, "W", 7.0),  # a primary unit: unchanged
    ],
)
def test_rfc8798_secondary_units_are_accepted_and_converted(
    unit: str, value: float, want_unit: str, want_value: float
) -> None:
    """Secondary units become their primary unit by the registered scale, except those Tally
    rates in directly."""
    pack = f'[{{"bn":"m1:","n":"x","u":"{unit}","v":{value}}}]'.encode()
    (r,) = senml_readings(pack, NOW_MS)
    assert (r.unit, r.value) == (want_unit, pytest.approx(want_value))
