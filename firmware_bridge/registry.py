"""The agent's entry point for source types it does not build itself.

``build(type, name, options, state)`` validates ``options`` for ``type`` and returns a Source;
each adapter module is imported only when its type is used (pymodbus, paho, h11 … are not
loaded for a config that does not need them).
"""

# ruff: noqa: PLC0415 - adapters are imported lazily, only for the types a config uses

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

import msgspec

from agent.protocol import Kind
from agent.validation import Strict, convert, describe
from firmware_bridge import options as opt
from firmware_bridge.errors import BridgeConfigError

if TYPE_CHECKING:
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

    from agent.sources.base import Source, StateStore
    from firmware_bridge.command.source import ValueSpec

__all__ = ["KNOWN_TYPES", "build"]

KNOWN_TYPES: Final = (
    "modbus-tcp",
    "modbus-rtu",
    "dsmr-p1",
    "iec62056-21",
    "senml-http",
    "senml-udp",
    "shelly",
    "tasmota",
    "command",
    "file",
)


def _modbus_tcp(name: str, o: opt.ModbusTcpOptions) -> Source:
    from firmware_bridge.modbus.map_files import load_map
    from firmware_bridge.modbus.source import ModbusSource, tcp_client

    def client() -> AsyncModbusTcpClient:
        return tcp_client(o.host, o.port, timeout_s=o.timeout_s, retries=o.retries)

    return ModbusSource(
        name, client, load_map(o.map), unit_id=o.unit_id, meter=o.meter, interval_s=o.interval_s
    )


def _modbus_rtu(name: str, o: opt.ModbusRtuOptions) -> Source:
    from firmware_bridge.modbus.map_files import load_map
    from firmware_bridge.modbus.source import ModbusSource, rtu_client

    def client() -> AsyncModbusSerialClient:
        return rtu_client(
            o.device,
            baudrate=o.baudrate,
            parity=o.parity,
            stopbits=o.stopbits,
            bytesize=o.bytesize,
            timeout_s=o.timeout_s,
            retries=o.retries,
        )

    return ModbusSource(
        name,
        client,
        load_map(o.map),
        unit_id=o.unit_id,
        meter=o.meter,
        interval_s=o.interval_s,
        bus=o.device,
    )


def _p1(name: str, o: opt.P1Options) -> Source:
    from firmware_bridge.dsmr.source import P1Source
    from firmware_bridge.dsmr.telegram import DsmrSpec
    from firmware_bridge.serial_stream import ByteStream, SerialStream, TcpStream

    async def open_stream() -> ByteStream:
        if o.device is not None:
            return SerialStream.open(
                o.device, baudrate=o.baudrate, bytesize=o.bytesize, parity=o.parity
            )
        assert o.host is not None
        assert o.port is not None
        return await TcpStream.connect(o.host, o.port)

    return P1Source(
        name,
        open_stream,
        spec=DsmrSpec(o.spec),
        meter=o.meter,
        interval_s=o.interval_s,
        wait_s=o.wait_s,
        keep_all=o.keep == "all",
    )


def _iec(name: str, o: opt.IecOptions) -> Source:
    from firmware_bridge.iec62056.readout import DEFAULT_OBIS, ObisPoint
    from firmware_bridge.iec62056.source import IecReadoutSource

    table = dict(DEFAULT_OBIS)
    for code, metric in o.obis.items():
        if not re.fullmatch(r"\d+\.\d+\.\d+", code):
            raise BridgeConfigError(f"obis key {code!r} must be C.D.E, e.g. 1.8.0")
        kind = Kind.CUMULATIVE if code.split(".")[1] in ("8", "9") else Kind.GAUGE
        table[code] = ObisPoint(metric, kind)
    return IecReadoutSource(
        name,
        o.device,
        meter=o.meter,
        interval_s=o.interval_s,
        address=o.address,
        timeout_s=o.timeout_s,
        switch_baud=o.switch_baud,
        obis=table,
    )


def _senml_http(name: str, o: opt.SenmlHttpOptions) -> Source:
    from firmware_bridge.senml.servers import SenmlHttpSource

    return SenmlHttpSource(
        name,
        host=o.host,
        port=o.port,
        path=o.path,
        meter=o.meter,
        interval_s=o.interval_s,
        max_readings=o.max_readings,
    )


def _senml_udp(name: str, o: opt.SenmlUdpOptions) -> Source:
    from firmware_bridge.senml.servers import SenmlUdpSource

    return SenmlUdpSource(
        name,
        host=o.host,
        port=o.port,
        meter=o.meter,
        interval_s=o.interval_s,
        max_readings=o.max_readings,
    )


def _shelly(name: str, o: opt.ShellyOptions) -> Source:
    from firmware_bridge.mqtt_devices.source import MqttDeviceSource, shelly_decoder

    topics, decoder = shelly_decoder(o.device_id, o.generation, o.channel)
    return MqttDeviceSource(
        name,
        o.mqtt_url,
        topics,
        decoder,
        meter=o.meter,
        interval_s=o.interval_s,
        max_readings=o.max_readings,
    )


def _tasmota(name: str, o: opt.TasmotaOptions) -> Source:
    from firmware_bridge.mqtt_devices.source import MqttDeviceSource, tasmota_decoder

    topics, decoder = tasmota_decoder(o.topic)
    return MqttDeviceSource(
        name,
        o.mqtt_url,
        topics,
        decoder,
        meter=o.meter,
        interval_s=o.interval_s,
        max_readings=o.max_readings,
    )


def _value_spec(o: opt.CommandOptions | opt.FileOptions) -> ValueSpec:
    from firmware_bridge.command.source import ValueSpec

    try:
        pattern = re.compile(o.regex)
    except re.error as exc:
        raise BridgeConfigError(f"regex {o.regex!r} does not compile: {exc}") from exc
    return ValueSpec(pattern, o.metric, o.unit, Kind(o.kind), o.scale)


def _command(name: str, o: opt.CommandOptions) -> Source:
    from firmware_bridge.command.source import CommandSource

    return CommandSource(
        name, o.argv, _value_spec(o), meter=o.meter, interval_s=o.interval_s, timeout_s=o.timeout_s
    )


def _file(name: str, o: opt.FileOptions) -> Source:
    from firmware_bridge.command.source import FileSource

    return FileSource(name, o.path, _value_spec(o), meter=o.meter, interval_s=o.interval_s)


_BUILDERS: Final[dict[str, tuple[type[Strict], Callable[[str, object], Source]]]] = {
    "modbus-tcp": (opt.ModbusTcpOptions, _modbus_tcp),  # type: ignore[dict-item]
    "modbus-rtu": (opt.ModbusRtuOptions, _modbus_rtu),  # type: ignore[dict-item]
    "dsmr-p1": (opt.P1Options, _p1),  # type: ignore[dict-item]
    "iec62056-21": (opt.IecOptions, _iec),  # type: ignore[dict-item]
    "senml-http": (opt.SenmlHttpOptions, _senml_http),  # type: ignore[dict-item]
    "senml-udp": (opt.SenmlUdpOptions, _senml_udp),  # type: ignore[dict-item]
    "shelly": (opt.ShellyOptions, _shelly),  # type: ignore[dict-item]
    "tasmota": (opt.TasmotaOptions, _tasmota),  # type: ignore[dict-item]
    "command": (opt.CommandOptions, _command),  # type: ignore[dict-item]
    "file": (opt.FileOptions, _file),  # type: ignore[dict-item]
}


def build(type: str, name: str, options: Mapping[str, object], state: StateStore) -> Source:
    """A Source of ``type`` named ``name``; BridgeConfigError (a ValueError) explains bad options.

    ``state`` is accepted for sources that persist state across restarts (none of the
    bridge's adapters needs it today: meters keep their own registers).
    """
    entry = _BUILDERS.get(type)
    if entry is None:
        raise BridgeConfigError(
            f"source {name!r}: unknown type {type!r}; known types: {', '.join(KNOWN_TYPES)}"
        )
    struct, builder = entry
    try:
        validated = convert(dict(options), struct)
    except msgspec.ValidationError as exc:
        raise BridgeConfigError(f"source {name!r} (type {type}): {describe(exc, struct)}") from exc
    try:
        return builder(name, validated)
    except ValueError as exc:  # BridgeConfigError included: prefix the source it concerns
        raise BridgeConfigError(f"source {name!r} (type {type}): {exc}") from exc
