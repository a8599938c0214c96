"""The P1 adapter on real byte streams: a pseudo-terminal serial port and a TCP bridge."""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import SourceError
from firmware_bridge.dsmr.source import P1Source
from firmware_bridge.serial_stream import ByteStream, SerialStream, TcpStream
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.p1 import P1PtyMeter, make_telegram, serve_tcp
from tests.firmware_bridge.conftest import T0, FakeClock


def _serial(path: str, wait_s: float = 3.0) -> P1Source:
    async def open_stream() -> ByteStream:
        return SerialStream.open(path, baudrate=115200)

    return P1Source("p1", open_stream, wait_s=wait_s)


async def test_serial_p1_over_pty(clock: FakeClock) -> None:
    """Telegrams written byte-by-byte into a pty are framed, CRC-checked and decoded."""
    meter = P1PtyMeter(LoadModel(t0_s=T0), interval_s=0.05, clock=clock, chunk=7).start()
    source = _serial(meter.path)
    try:
        readings = {r.metric: r for r in await source.read(clock.now())}
    finally:
        await source.close()
        await meter.close()
    assert readings["energy_import_t1"].value == pytest.approx(1234.5 * 0.45, abs=0.001)
    assert readings["power_import"].value == pytest.approx(1500.0, abs=1.0)
    assert readings["gas"].value == pytest.approx(500.0)


async def test_serial_corrupt_telegram_is_flagged(clock: FakeClock) -> None:
    """If the only telegram since the last poll fails its CRC, the poll fails and says why."""
    meter = P1PtyMeter(LoadModel(t0_s=T0), clock=clock)  # not started: we write by hand
    source = _serial(meter.path, wait_s=1.0)
    raw = bytearray(make_telegram(LoadModel(t0_s=T0), T0))
    raw[raw.index(b"1.8.1(") + 8] ^= 0x01
    try:
        poll = asyncio.create_task(source.read(clock.now()))
        await asyncio.sleep(0.3)
        meter.write(b"noise" + bytes(raw))
        with pytest.raises(SourceError, match="CRC"):
            await poll
        assert source.bad_telegrams == 1
        assert source.framer.skipped_bytes == 5
    finally:
        await source.close()
        await meter.close()


async def test_silent_port_is_flagged(clock: FakeClock) -> None:
    """No telegram within wait_s fails the poll instead of returning nothing forever."""
    meter = P1PtyMeter(LoadModel(t0_s=T0), clock=clock)
    source = _serial(meter.path, wait_s=0.3)
    try:
        with pytest.raises(SourceError, match="no valid telegram"):
            await source.read(clock.now())
    finally:
        await source.close()
        await meter.close()


async def test_tcp_p1_bridge(clock: FakeClock) -> None:
    """The same adapter reads a P1-over-TCP bridge (ser2net style)."""
    server = await serve_tcp(LoadModel(t0_s=T0), "127.0.0.1", 0, interval_s=0.05, clock=clock)
    port = server.sockets[0].getsockname()[1]

    async def open_stream() -> ByteStream:
        return await TcpStream.connect("127.0.0.1", port)

    source = P1Source("p1", open_stream, wait_s=3.0, keep_all=True)
    try:
        await asyncio.sleep(0.3)
        first = await source.read(clock.now())
        assert {r.metric for r in first} >= {"energy_import_t1", "gas"}
        clock.t += 60
        await asyncio.sleep(0.2)
        second = await source.read(clock.now())
        assert max(r.value for r in second if r.metric == "energy_import_t1") > max(
            r.value for r in first if r.metric == "energy_import_t1"
        )
    finally:
        await source.close()
        server.close()
        await server.wait_closed()


async def test_closed_tcp_bridge_is_flagged_then_recovers(clock: FakeClock) -> None:
    """A bridge that refuses connections fails the poll; the next poll tries again."""
    attempts = 0

    async def open_stream() -> ByteStream:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError("refused")

    source = P1Source("p1", open_stream, wait_s=1.0)
    for _ in range(2):
        with pytest.raises(SourceError, match="refused"):
            await source.read(clock.now())
    await source.close()
    assert attempts == 2


async def test_simulated_meter_without_reader_never_blocks(clock: FakeClock) -> None:
    """A simulated P1 port nobody reads drops bytes instead of stalling the event loop."""
    meter = P1PtyMeter(LoadModel(t0_s=T0), clock=clock)
    telegram = make_telegram(LoadModel(t0_s=T0), T0)
    try:
        for _ in range(100):  # far more than a pty buffers
            meter.write(telegram)
    finally:
        await meter.close()
    assert meter.dropped_bytes > 0


async def test_gas_is_returned_once_per_capture(clock: FakeClock) -> None:
    """The gas register repeats in every telegram; it is returned once per capture time."""
    meter = P1PtyMeter(LoadModel(t0_s=T0), interval_s=0.05, clock=clock).start()
    source = _serial(meter.path)
    try:
        first = {r.metric for r in await source.read(clock.now())}
        await asyncio.sleep(0.2)
        second = {r.metric for r in await source.read(clock.now())}
        clock.t += 300  # the simulated gas meter captures every 5 minutes
        await asyncio.sleep(0.2)
        third = {r.metric for r in await source.read(clock.now())}
    finally:
        await source.close()
        await meter.close()
    assert "gas" in first
    assert "gas" not in second
    assert "energy_import_t1" in second
    assert "gas" in third
