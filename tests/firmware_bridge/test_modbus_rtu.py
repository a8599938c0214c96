"""Modbus RTU end to end over a pseudo-terminal null-modem link (real pymodbus serial stack)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from agent.errors import SourceError
from firmware_bridge.errors import DeviceError
from firmware_bridge.modbus.bus_lock import bus_lock
from firmware_bridge.modbus.map_files import load_map
from firmware_bridge.modbus.source import ModbusSource, rtu_client
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.modbus_server import MeterRegisters, start_rtu_server, stop_server
from firmware_bridge.simulators.pty_link import PtyLink
from tests.firmware_bridge.conftest import T0, FakeClock

Tamper = Callable[[bytes], bytes] | None


async def _rtu_meter(clock: FakeClock, tamper: Tamper = None) -> tuple[PtyLink, object]:
    link = PtyLink(tamper_a_to_b=tamper).start()
    meter = MeterRegisters(load_map("sdm120"), LoadModel(t0_s=T0, phases=1))
    server = await start_rtu_server(meter, link.a, unit_id=7, clock=clock)
    return link, server


@pytest.fixture
async def rtu(clock: FakeClock) -> AsyncIterator[PtyLink]:
    """A simulated SDM120 with unit id 7 at the far end of ``link.b``."""
    link, server = await _rtu_meter(clock)
    yield link
    await stop_server(server)  # type: ignore[arg-type]
    link.close()


def _source(device: str, unit_id: int) -> ModbusSource:
    return ModbusSource(
        "sdm120",
        lambda: rtu_client(
            device, baudrate=9600, parity="N", stopbits=1, bytesize=8, timeout_s=0.5, retries=0
        ),
        load_map("sdm120"),
        unit_id=unit_id,
    )


async def test_rtu_poll_reads_the_meter(rtu: PtyLink, clock: FakeClock) -> None:
    """RTU frames with CRC travel over the pty and decode into the SDM120's values."""
    source = _source(rtu.b, 7)
    readings = {r.metric: r.value for r in await source.read(clock.now())}
    await source.close()
    assert readings["energy_import"] == pytest.approx(1234.5)
    assert readings["power"] == pytest.approx(1500.0, rel=1e-6)
    assert readings["voltage"] == pytest.approx(230.0, abs=1.5)


async def test_rtu_wrong_unit_id_times_out(rtu: PtyLink, clock: FakeClock) -> None:
    """Nobody answers unit 3 on the bus: the poll fails with SourceError."""
    source = _source(rtu.b, 3)
    with pytest.raises(SourceError):
        await source.read(clock.now())
    await source.close()


async def test_rtu_crc_error_is_flagged(clock: FakeClock) -> None:
    """A corrupted byte on the line (bad CRC) fails the poll instead of giving wrong values."""

    def flip_last(data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 0x55])

    link, server = await _rtu_meter(clock, tamper=flip_last)
    source = _source(link.b, 7)
    try:
        with pytest.raises(SourceError):
            await source.read(clock.now())
    finally:
        await source.close()
        await stop_server(server)  # type: ignore[arg-type]
        link.close()


async def test_two_meters_on_one_bus_take_turns(clock: FakeClock) -> None:
    """Two sources on one RS-485 bus polled at the same moment both get their own answers."""
    link = PtyLink().start()
    meter = MeterRegisters(load_map("sdm120"), LoadModel(t0_s=T0, phases=1))
    server = await start_rtu_server(meter, link.a, unit_id=[7, 8], clock=clock)

    def source(unit_id: int) -> ModbusSource:
        return ModbusSource(
            f"sdm120-{unit_id}",
            lambda: rtu_client(link.b, baudrate=9600, parity="N", stopbits=1, bytesize=8,
                               timeout_s=1.0, retries=0),
            load_map("sdm120"),
            unit_id=unit_id,
            bus=link.b,
        )  # fmt: skip

    sources = [source(7), source(8), source(7), source(8)]
    try:
        results = await asyncio.gather(*(s.read(clock.now()) for s in sources))
    finally:
        for s in sources:
            await s.close()
        await stop_server(server)
        link.close()
    for readings in results:
        assert {r.metric: r.value for r in readings}["energy_import"] == pytest.approx(1234.5)
    assert [readings[0].meter for readings in results] == ["sdm120-7", "sdm120-8"] * 2


async def test_bus_lock_times_out_when_held() -> None:
    """A bus held by another poll for too long fails this poll with DeviceError."""
    device = f"/dev/tally-test-bus-{uuid.uuid4().hex}"
    async with bus_lock(device, source="a", timeout_s=1):
        with pytest.raises(DeviceError, match="busy"):
            async with bus_lock(device, source="b", timeout_s=0.1):
                pass
    async with bus_lock(device, source="b", timeout_s=0.1):
        pass  # free again
