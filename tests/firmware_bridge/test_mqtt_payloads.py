"""Shelly and Tasmota payload decoders (fixtures: examples from the vendors' API docs)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.protocol import Kind
from firmware_bridge.errors import DecodeError
from firmware_bridge.mqtt_devices.payloads import (
    decode_shelly_gen1,
    decode_shelly_gen2,
    decode_tasmota_sensor,
)

TS = 1_767_225_600_000

# Shelly Gen2 API docs, Switch component, status example (Switch.GetStatus / status/switch:0)
SHELLY_GEN2_SWITCH_STATUS = (
    b'{"id":0,"source":"timer","output":true,"apower":8.9,"voltage":237.5,"current":0.068,'
    b'"aenergy":{"total":6.532,"by_minute":[45.199,47.141,88.397],"minute_ts":1654511700},'
    b'"temperature":{"tC":23.5,"tF":74.4}}'
)
# Tasmota docs, MQTT telemetry tele/<topic>/SENSOR of an energy monitoring plug
TASMOTA_SENSOR = (
    b'{"Time":"2019-06-07T13:32:21","ENERGY":{"TotalStartTime":"2019-06-05T13:20:21",'
    b'"Total":0.007,"Yesterday":0.000,"Today":0.007,"Period":0,"Power":0,"ApparentPower":0,'
    b'"ReactivePower":0,"Factor":0.00,"Voltage":0,"Current":0.000}}'
)
TASMOTA_TWO_CHANNELS = (
    b'{"Time":"2024-01-01T00:00:00",'
    b'"ENERGY":{"Total":12.5,"Today":0.4,"Power":[60,15],"Voltage":231}}'
)


@pytest.mark.parametrize(
    ("metric", "unit", "kind", "value"),
    [
        ("energy", "Wh", Kind.CUMULATIVE, 6.532),
        ("power", "W", Kind.GAUGE, 8.9),
        ("voltage", "V", Kind.GAUGE, 237.5),
        ("current", "A", Kind.GAUGE, 0.068),
    ],
)
def test_shelly_gen2_switch_status(metric: str, unit: str, kind: Kind, value: float) -> None:
    """aenergy.total is a Wh register; apower, voltage and current are gauges."""
    got = {m.metric: m for m in decode_shelly_gen2(SHELLY_GEN2_SWITCH_STATUS, TS)}
    assert (got[metric].unit, got[metric].kind, got[metric].value) == (unit, kind, value)


def test_shelly_gen2_without_energy_gives_only_present_fields() -> None:
    """A status notification carrying only output state gives no measurement."""
    assert decode_shelly_gen2(b'{"id":0,"output":false}', TS) == []


@pytest.mark.parametrize(
    ("kind", "payload", "metric", "unit", "value"),
    [
        ("energy", b"1200", "energy", "Wh", 20.0),  # watt-minutes: 1200 Wmin = 20 Wh
        ("energy", b"90", "energy", "Wh", 1.5),
        ("power", b"54.32", "power", "W", 54.32),
    ],
)
def test_shelly_gen1(kind: str, payload: bytes, metric: str, unit: str, value: float) -> None:
    """Gen1 energy arrives in watt-minutes and is converted to Wh; power is in W."""
    [m] = decode_shelly_gen1(kind, payload, TS)
    assert (m.metric, m.unit) == (metric, unit)
    assert m.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("metric", "unit", "kind", "value"),
    [
        ("energy", "kWh", Kind.CUMULATIVE, 0.007),
        ("energy_today", "kWh", Kind.GAUGE, 0.007),
        ("power", "W", Kind.GAUGE, 0.0),
        ("power_factor", "1", Kind.GAUGE, 0.0),
    ],
)
def test_tasmota_sensor(metric: str, unit: str, kind: Kind, value: float) -> None:
    """ENERGY.Total is a kWh register; Today resets daily so it is a gauge; Power is W."""
    got = {m.metric: m for m in decode_tasmota_sensor(TASMOTA_SENSOR, TS)}
    assert (got[metric].unit, got[metric].kind, got[metric].value) == (unit, kind, value)


def test_tasmota_channels_are_numbered() -> None:
    """Array values of multi-channel devices become power_1, power_2."""
    got = {m.metric: m.value for m in decode_tasmota_sensor(TASMOTA_TWO_CHANNELS, TS)}
    assert (got["power_1"], got["power_2"], got["energy"]) == (60.0, 15.0, 12.5)


def test_tasmota_sensor_without_energy_is_empty() -> None:
    """A SENSOR message of a temperature-only device gives nothing."""
    assert decode_tasmota_sensor(b'{"Time":"x","DS18B20":{"Temperature":21.5}}', TS) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda: decode_shelly_gen2(b'{"aenergy":{"total":"6"}}', TS),
        lambda: decode_shelly_gen2(b"[1]", TS),
        lambda: decode_shelly_gen1("energy", b"abc", TS),
        lambda: decode_shelly_gen1("energy", b"nan", TS),
        lambda: decode_shelly_gen1("temperature", b"1", TS),
        lambda: decode_tasmota_sensor(b'{"ENERGY":{"Total":true}}', TS),
        lambda: decode_tasmota_sensor(b"{", TS),
    ],
)
def test_bad_payloads(call: object) -> None:
    """Wrong types, non-JSON, NaN and unknown kinds raise DecodeError."""
    with pytest.raises(DecodeError):
        call()  # type: ignore[operator]


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    """No payload makes a decoder raise anything but DecodeError."""
    calls: tuple[Callable[[], object], ...] = (
        lambda: decode_shelly_gen2(data, TS),
        lambda: decode_shelly_gen1("energy", data, TS),
        lambda: decode_tasmota_sensor(data, TS),
        lambda: decode_tasmota_sensor(b'{"ENERGY":' + data + b"}", TS),
    )
    for call in calls:
        with contextlib.suppress(DecodeError):
            call()
