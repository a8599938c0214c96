"""The registry the agent calls for non-built-in source types."""

from __future__ import annotations

import pytest

from agent.config import parse_source
from agent.sources.base import Source
from agent.sources.factory import build_source
from firmware_bridge.errors import BridgeConfigError
from firmware_bridge.modbus.map_files import load_map
from firmware_bridge.registry import KNOWN_TYPES, build
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.modbus_server import (
    MeterRegisters,
    bound_port,
    start_tcp_server,
    stop_server,
)
from tests.firmware_bridge.conftest import T0, FakeClock


class MemoryState:
    """In-memory StateStore."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def load_state(self, key: str) -> str | None:
        return self.data.get(key)

    async def save_state(self, key: str, value: str) -> None:
        self.data[key] = value


MINIMAL: dict[str, dict[str, object]] = {
    "modbus-tcp": {"host": "192.0.2.10", "map": "sdm630"},
    "modbus-rtu": {"device": "/dev/ttyUSB0", "map": "sdm120", "unit_id": 3, "parity": "E"},
    "dsmr-p1": {"device": "/dev/ttyUSB1"},
    "iec62056-21": {"device": "/dev/ttyUSB2", "obis": {"15.8.0": "energy_abs"}},
    "senml-http": {"port": 8081},
    "senml-udp": {"port": 5684},
    "shelly": {"device_id": "shellyplus1pm-a8032ab12345"},
    "tasmota": {"topic": "plug_1", "mqtt_url": "mqtt://127.0.0.1:1883"},
    "command": {"argv": ["cat", "/sys/x"], "metric": "energy", "unit": "kWh", "kind": "cumulative"},
    "file": {"path": "/tmp/x", "metric": "temp", "unit": "°C", "kind": "gauge", "interval_s": 5},
}


def test_every_known_type_has_an_example() -> None:
    """The test table covers every type the registry advertises."""
    assert set(MINIMAL) == set(KNOWN_TYPES)


@pytest.mark.parametrize("kind", KNOWN_TYPES)
def test_builds_a_source(kind: str) -> None:
    """Minimal options build a Source named as configured (no I/O at build time)."""
    source = build(kind, "main", MINIMAL[kind], MemoryState())
    assert isinstance(source, Source)
    assert source.name == "main"
    assert source.interval_s > 0


def test_interval_and_meter_options_apply() -> None:
    """interval_s and meter are honoured."""
    source = build("file", "f", MINIMAL["file"], MemoryState())
    assert source.interval_s == 5


@pytest.mark.parametrize(
    ("kind", "options", "fragment"),
    [
        ("modbus-tcp", {"map": "sdm630"}, "host"),
        ("modbus-tcp", {"host": "h", "map": "sdm630", "port": 70000}, "port"),
        ("modbus-tcp", {"host": "h", "map": "nope"}, "nope"),
        ("modbus-rtu", {"device": "/dev/x", "map": "sdm120", "parity": "X"}, "parity"),
        ("dsmr-p1", {}, "either device"),
        ("dsmr-p1", {"host": "h"}, "port"),
        ("iec62056-21", {"device": "/dev/x", "obis": {"1-0:1.8.0": "e"}}, "C.D.E"),
        ("shelly", {"device_id": "a/b"}, "device_id"),
        ("command", {"argv": [], "metric": "e", "unit": "kWh", "kind": "gauge"}, "argv"),
        (
            "command",
            {"argv": ["x"], "metric": "e", "unit": "kWh", "kind": "gauge", "regex": "("},
            "regex",
        ),
        ("file", {"path": "/x", "metric": "e", "unit": "kWh", "kind": "counter"}, "kind"),
        (
            "file",
            {"path": "/x", "metric": "e", "unit": "kWh", "kind": "gauge", "colour": 1},
            "colour",
        ),
        ("zigbee", {}, "unknown type"),
    ],
)
def test_bad_options_are_explained(kind: str, options: dict[str, object], fragment: str) -> None:
    """Invalid options raise BridgeConfigError (a ValueError) naming the source and the field."""
    with pytest.raises(BridgeConfigError, match=fragment) as info:
        build(kind, "src-1", options, MemoryState())
    assert isinstance(info.value, ValueError)
    assert "src-1" in str(info.value)


async def test_agent_factory_builds_and_polls_a_bridge_source() -> None:
    """The agent's own factory reaches the registry and the source reads a simulated SDM630."""
    clock = FakeClock()
    server = await start_tcp_server(
        MeterRegisters(load_map("sdm630"), LoadModel(t0_s=T0)), "127.0.0.1", 0, clock=clock
    )
    cfg = parse_source(
        {"type": "modbus-tcp", "name": "main-meter", "interval_s": 15,
         "host": "127.0.0.1", "port": bound_port(server), "map": "sdm630"}
    )  # fmt: skip
    source = build_source(cfg, MemoryState())
    try:
        readings = {r.metric: r for r in await source.read(clock.now())}
    finally:
        await source.close()
        await stop_server(server)
    assert source.interval_s == 15
    assert readings["energy_import"].meter == "main-meter"
    assert readings["energy_import"].value == 1234.5
