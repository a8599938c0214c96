"""The Modbus polling adapter: reads a register map's blocks with pymodbus and decodes them.

Every pymodbus failure (timeout, connection refused, exception response, CRC error - which
pymodbus sees as a missing answer) is translated once, here, into ``SourceError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from agent.errors import SourceError
from agent.protocol import Reading
from firmware_bridge.errors import DecodeError, DeviceError
from firmware_bridge.measurement import Measurement, to_readings
from firmware_bridge.modbus.bus_lock import bus_lock
from firmware_bridge.modbus.registers import Block, RegisterMap, decode_block, plan_blocks

__all__ = ["ModbusSource", "rtu_client", "tcp_client"]


def tcp_client(host: str, port: int, *, timeout_s: float, retries: int) -> AsyncModbusTcpClient:
    return AsyncModbusTcpClient(
        host, port=port, timeout=timeout_s, retries=retries, reconnect_delay=0
    )


def rtu_client(
    device: str,
    *,
    baudrate: int,
    parity: str,
    stopbits: int,
    bytesize: int,
    timeout_s: float,
    retries: int,
) -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient(
        device,
        framer=FramerType.RTU,
        baudrate=baudrate,
        parity=parity,
        stopbits=stopbits,
        bytesize=bytesize,
        timeout=timeout_s,
        retries=retries,
        reconnect_delay=0,
    )


class ModbusSource:
    """A ``Source`` polling one Modbus device (one unit id) with one register map."""

    def __init__(
        self,
        name: str,
        client_factory: Callable[[], AsyncModbusTcpClient | AsyncModbusSerialClient],
        register_map: RegisterMap,
        *,
        unit_id: int = 1,
        meter: str | None = None,
        interval_s: float = 60.0,
        poll_timeout_s: float = 30.0,
        bus: str | None = None,
    ) -> None:
        """``bus``: the serial device of an RS-485 bus shared with other sources; polls then
        take turns (see ``bus_lock``) and the port is closed after each poll."""
        self._name = name
        self._client_factory = client_factory
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._map = register_map
        self._blocks = plan_blocks(register_map)
        self._unit_id = unit_id
        self._meter = meter or name
        self._interval_s = interval_s
        self._poll_timeout_s = poll_timeout_s
        self._bus = bus

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @property
    def blocks(self) -> Sequence[Block]:
        return tuple(self._blocks)

    async def read(self, now: datetime) -> Sequence[Reading]:
        """Read every block; any failure flags the whole poll (no partial readings)."""
        ts_ms = int(now.timestamp() * 1000)
        try:
            async with asyncio.timeout(self._poll_timeout_s):
                if self._bus is None:
                    measurements = await self._poll(ts_ms)
                else:
                    async with bus_lock(
                        self._bus, source=self._name, timeout_s=self._poll_timeout_s / 2
                    ):
                        try:
                            measurements = await self._poll(ts_ms)
                        finally:
                            self._drop_client()  # free the tty for the next meter
            return to_readings(self._meter, measurements)
        except (DeviceError, DecodeError) as exc:
            self._drop_client()
            raise SourceError(f"{self._name}: {exc}", source=self._name) from exc
        except (ModbusException, OSError, TimeoutError) as exc:
            self._drop_client()
            raise SourceError(
                f"{self._name}: Modbus poll failed: {type(exc).__name__}: {exc}",
                source=self._name,
            ) from exc

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _poll(self, ts_ms: int) -> list[Measurement]:
        if self._client is None:
            self._client = self._client_factory()
        client = self._client
        if not client.connected and not await client.connect():
            raise DeviceError("cannot connect to the Modbus device", source=self._name)
        out: list[Measurement] = []
        for block in self._blocks:
            if block.function == 3:
                rr = await client.read_holding_registers(
                    block.address, count=block.count, device_id=self._unit_id
                )
            else:
                rr = await client.read_input_registers(
                    block.address, count=block.count, device_id=self._unit_id
                )
            if rr.isError():
                code = getattr(rr, "exception_code", "?")
                raise DeviceError(
                    f"exception response {code} to function {block.function} read of "
                    f"{block.count} registers at {block.address} (unit {self._unit_id})",
                    source=self._name,
                )
            out.extend(decode_block(block, rr.registers, ts_ms))
        return out

    async def close(self) -> None:
        self._drop_client()
