"""Validated options of each source type (the keys of a ``[[sources]]`` entry besides type/name).

Validation lives here, at the configuration boundary (frozen ``msgspec`` structs, see
``agent.validation``); the adapters take plain values.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, field

from agent.validation import FieldProblem, Strict

__all__ = [
    "CommandOptions",
    "FileOptions",
    "IecOptions",
    "ModbusRtuOptions",
    "ModbusTcpOptions",
    "P1Options",
    "SenmlHttpOptions",
    "SenmlUdpOptions",
    "ShellyOptions",
    "TasmotaOptions",
]

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z"
Id = Annotated[str, Meta(pattern=_ID)]
Port = Annotated[int, Meta(ge=1, le=65535)]
Text = Annotated[str, Meta(min_length=1)]
Interval = Annotated[float, Meta(gt=0, le=86_400)]
Baudrate = Annotated[int, Meta(ge=300, le=921_600)]
MaxReadings = Annotated[int, Meta(ge=1)]
Topic = Annotated[str, Meta(min_length=1, pattern=r"^[^#+/]+\Z")]


class _Common(Strict, frozen=True, kw_only=True):
    meter: Id | None = None  # the meter name in readings; defaults to the source name
    interval_s: Interval = 60.0


class _Modbus(_Common, frozen=True, kw_only=True):
    map: Text  # shipped map name (sdm630) or path to a .toml map
    unit_id: Annotated[int, Meta(ge=0, le=247)] = 1
    timeout_s: Annotated[float, Meta(gt=0, le=60)] = 3.0
    retries: Annotated[int, Meta(ge=0, le=10)] = 2


class ModbusTcpOptions(_Modbus, frozen=True, kw_only=True):
    host: Text
    port: Port = 502


class ModbusRtuOptions(_Modbus, frozen=True, kw_only=True):
    device: Text
    baudrate: Baudrate = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class P1Options(_Common, frozen=True, kw_only=True):
    device: str | None = None  # serial port, e.g. /dev/ttyUSB0 …
    host: str | None = None  # … or a TCP serial bridge (ser2net, ESP-Link)
    port: Port | None = None
    baudrate: Baudrate = 115_200  # DSMR 4/5; DSMR 2.2/3: 9600 7E1
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    spec: Literal["v2.2", "v3", "v4", "v5", "belgium"] = "v5"
    wait_s: Annotated[float, Meta(ge=0, le=600)] = 15.0  # how long a poll waits for a telegram
    keep: Literal["latest", "all"] = "latest"  # readings of the last telegram, or of every one

    def __post_init__(self) -> None:
        if (self.device is None) == (self.host is None):
            raise ValueError("give either device (serial) or host and port (TCP)")
        if self.host is not None and self.port is None:
            raise FieldProblem("port", "required with host")


class IecOptions(_Common, frozen=True, kw_only=True):
    device: Text
    interval_s: Interval = 300.0
    address: Annotated[str, Meta(max_length=32, pattern=r"^[A-Za-z0-9 ]*\Z")] = ""
    timeout_s: Annotated[float, Meta(gt=0, le=300)] = 30.0
    switch_baud: bool = True
    obis: dict[str, str] = field(default_factory=dict)  # extra "C.D.E" → metric, e.g. "1.8.0"


class SenmlHttpOptions(_Common, frozen=True, kw_only=True):
    host: str = "0.0.0.0"  # noqa: S104 - devices on the LAN post to the agent
    port: Port = 8080
    path: Annotated[str, Meta(pattern=r"^/[A-Za-z0-9/._-]*\Z")] = "/senml"
    max_readings: MaxReadings = 100_000


class SenmlUdpOptions(_Common, frozen=True, kw_only=True):
    host: str = "0.0.0.0"  # noqa: S104 - devices on the LAN send to the agent
    port: Port = 5683
    max_readings: MaxReadings = 100_000


class _Mqtt(_Common, frozen=True, kw_only=True):
    mqtt_url: Annotated[str, Meta(pattern=r"^(mqtt|tcp)://")] = "mqtt://127.0.0.1:1883"
    max_readings: MaxReadings = 10_000


class ShellyOptions(_Mqtt, frozen=True, kw_only=True):
    device_id: Topic  # e.g. shellyplus1pm-a8032ab12345
    generation: Literal[1, 2] = 2  # 2 covers Gen2, Gen3 and Gen4 (RPC status notifications)
    channel: Annotated[int, Meta(ge=0, le=15)] = 0


class TasmotaOptions(_Mqtt, frozen=True, kw_only=True):
    topic: Topic  # Tasmota's %topic%


class _Parsed(_Common, frozen=True, kw_only=True):
    regex: str = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
    metric: Id
    unit: Annotated[str, Meta(min_length=1, max_length=16)]
    kind: Literal["cumulative", "gauge", "delta"]
    scale: float = 1.0


class CommandOptions(_Parsed, frozen=True, kw_only=True):
    argv: Annotated[list[str], Meta(min_length=1)]
    timeout_s: Annotated[float, Meta(gt=0, le=600)] = 10.0


class FileOptions(_Parsed, frozen=True, kw_only=True):
    path: Text
