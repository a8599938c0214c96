"""Validated options of each source type (the keys of a ``[[sources]]`` entry besides type/name).

Pydantic lives here, at the configuration boundary; the adapters take plain values.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
Meter = Annotated[str | None, Field(default=None, pattern=_ID)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    meter: Meter = None  # the meter name in readings; defaults to the source name
    interval_s: float = Field(default=60.0, gt=0, le=86_400)


class _Modbus(_Common):
    map: str = Field(min_length=1)  # shipped map name (sdm630) or path to a .toml map
    unit_id: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=3.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=10)


class ModbusTcpOptions(_Modbus):
    host: str = Field(min_length=1)
    port: Port = 502


class ModbusRtuOptions(_Modbus):
    device: str = Field(min_length=1)
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class P1Options(_Common):
    device: str | None = None  # serial port, e.g. /dev/ttyUSB0 …
    host: str | None = None  # … or a TCP serial bridge (ser2net, ESP-Link)
    port: Port | None = None
    baudrate: int = Field(default=115_200, ge=300, le=921_600)  # DSMR 4/5; DSMR 2.2/3: 9600 7E1
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    spec: Literal["v2.2", "v3", "v4", "v5", "belgium"] = "v5"
    wait_s: float = Field(default=15.0, ge=0, le=600)  # how long a poll waits for a telegram
    keep: Literal["latest", "all"] = "latest"  # readings of the last telegram, or of every one

    @model_validator(mode="after")
    def _one_transport(self) -> P1Options:
        if (self.device is None) == (self.host is None):
            raise ValueError("give either device (serial) or host and port (TCP)")
        if self.host is not None and self.port is None:
            raise ValueError("port is required with host")
        return self


class IecOptions(_Common):
    device: str = Field(min_length=1)
    interval_s: float = Field(default=300.0, gt=0, le=86_400)
    address: str = Field(default="", max_length=32, pattern=r"^[A-Za-z0-9 ]*$")
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    switch_baud: bool = True
    obis: dict[str, str] = Field(default_factory=dict)  # extra "C.D.E" → metric, e.g. "1.8.0"


class SenmlHttpOptions(_Common):
    host: str = "0.0.0.0"  # noqa: S104 - devices on the LAN post to the agent
    port: Port = 8080
    path: str = Field(default="/senml", pattern=r"^/[A-Za-z0-9/._-]*$")
    max_readings: int = Field(default=100_000, ge=1)


class SenmlUdpOptions(_Common):
    host: str = "0.0.0.0"  # noqa: S104 - devices on the LAN send to the agent
    port: Port = 5683
    max_readings: int = Field(default=100_000, ge=1)


class _Mqtt(_Common):
    mqtt_url: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^(mqtt|tcp)://")
    max_readings: int = Field(default=10_000, ge=1)


class ShellyOptions(_Mqtt):
    device_id: str = Field(min_length=1, pattern=r"^[^#+/]+$")  # e.g. shellyplus1pm-a8032ab12345
    generation: Literal[1, 2] = 2  # 2 covers Gen2, Gen3 and Gen4 (RPC status notifications)
    channel: int = Field(default=0, ge=0, le=15)


class TasmotaOptions(_Mqtt):
    topic: str = Field(min_length=1, pattern=r"^[^#+/]+$")  # Tasmota's %topic%


class _Parsed(_Common):
    regex: str = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
    metric: str = Field(pattern=_ID)
    unit: str = Field(min_length=1, max_length=16)
    kind: Literal["cumulative", "gauge", "delta"]
    scale: float = 1.0


class CommandOptions(_Parsed):
    argv: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0, le=600)


class FileOptions(_Parsed):
    path: str = Field(min_length=1)
