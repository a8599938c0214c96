"""Modbus TCP end to end: the adapter polls a real pymodbus server simulating an SDM630."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pymodbus.server import ModbusTcpServer

from agent.errors import SourceError
from agent.protocol import Kind
from firmware_bridge.modbus.map_files import load_map, parse_map
from firmware_bridge.modbus.source import ModbusSource, tcp_client
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.modbus_server import (
    MeterRegisters,
    bound_port,
    start_tcp_server,
    stop_server,
)
from tests.firmware_bridge.conftest import T0, FakeClock


@pytest.fixture
async def sdm630(clock: FakeClock) -> AsyncIterator[int]:
    """Port of a simulated SDM630 (starts at 1234.5 kWh import, 1500 W base load at T0)."""
    meter = MeterRegisters(load_map("sdm630"), LoadModel(t0_s=T0))
    server: ModbusTcpServer = await start_tcp_server(meter, "127.0.0.1", 0, clock=clock)
    yield bound_port(server)
    await stop_server(server)


def _source(port: int, map_name: str = "sdm630", timeout_s: float = 2.0) -> ModbusSource:
    rmap = load_map(map_name)
    return ModbusSource(
        "sdm", lambda: tcp_client("127.0.0.1", port, timeout_s=timeout_s, retries=0), rmap
    )


async def test_reads_the_configured_registers(sdm630: int, clock: FakeClock) -> None:
    """At T0 the meter shows its initial register values and base load."""
    source = _source(sdm630)
    readings = {r.metric: r for r in await source.read(clock.now())}
    await source.close()
    assert readings["energy_import"].value == pytest.approx(1234.5)
    assert readings["energy_import"].kind is Kind.CUMULATIVE
    assert readings["energy_import"].unit == "kWh"
    assert readings["power"].value == pytest.approx(1500.0, rel=1e-6)
    assert readings["power"].kind is Kind.GAUGE
    assert readings["energy_import"].ts_ms == int(T0 * 1000)
    assert len(readings) == len(load_map("sdm630").points)


async def test_energy_grows_between_polls(sdm630: int, clock: FakeClock) -> None:
    """An hour at ~1.5 kW later the import register has grown by about 1.5 kWh."""
    source = _source(sdm630)
    first = {r.metric: r.value for r in await source.read(clock.now())}
    clock.t += 3600
    second = {r.metric: r.value for r in await source.read(clock.now())}
    await source.close()
    grown = second["energy_import"] - first["energy_import"]
    assert 1.3 < grown < 1.7  # float32 registers: ~0.1 Wh resolution at this size


async def test_exception_response_flags_the_poll(sdm630: int, clock: FakeClock) -> None:
    """Reading an address the meter does not have is a SourceError, and the next poll works."""
    bad = parse_map(
        'name = "bad"\n[[points]]\nmetric = "nothing"\naddress = 0x2000\n'
        'unit = "W"\nkind = "gauge"\n'
    )
    source = ModbusSource(
        "sdm", lambda: tcp_client("127.0.0.1", sdm630, timeout_s=2, retries=0), bad
    )
    with pytest.raises(SourceError, match="exception response 2") as info:
        await source.read(clock.now())
    assert info.value.source == "sdm"
    await source.close()
    good = _source(sdm630)
    assert await good.read(clock.now())
    await good.close()


async def test_refused_connection_flags_the_poll(clock: FakeClock) -> None:
    """Nothing listening on the port is a SourceError, not a crash."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    source = _source(port)
    with pytest.raises(SourceError):
        await source.read(clock.now())
    await source.close()


async def test_silent_device_times_out(clock: FakeClock) -> None:
    """A device that accepts the connection but never answers fails the poll after the timeout."""
    held: list[asyncio.StreamWriter] = []

    async def mute(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = _source(port, timeout_s=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(SourceError):
        await source.read(clock.now())
    assert loop.time() - started < 10
    await source.close()
    for w in held:
        w.close()
    server.close()
    await server.wait_closed()
