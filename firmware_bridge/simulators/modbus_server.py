"""A pymodbus server that answers like a meter of a register map, over TCP or serial (RTU).

Registers are computed at each request from a ``LoadModel`` and the injected clock, so the
energy registers grow over time and power varies. Addresses outside the map's range answer
with the exception "illegal data address", like a real meter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from firmware_bridge.modbus.registers import RegisterMap, encode_value
from firmware_bridge.simulators.load import LoadModel

__all__ = ["MeterRegisters", "start_rtu_server", "start_tcp_server"]


class MeterRegisters:
    """Register contents of a simulated meter at a given time (used by the server action)."""

    def __init__(self, register_map: RegisterMap, model: LoadModel) -> None:
        self.register_map = register_map
        self.model = model

    def registers_at(self, function: int, t_s: float) -> dict[int, int]:
        """Address → word for every point of ``function`` (3 or 4) at time ``t_s``."""
        values = self.model.values(t_s)
        out: dict[int, int] = {}
        for p in self.register_map.points:
            if p.function != function:
                continue
            words = encode_value(values.get(p.metric, 0.0) / p.scale, p.dtype, p.word_order)
            for i, w in enumerate(words):
                out[p.address + i] = w
        return out

    def size(self, function: int) -> int:
        ends = [p.end for p in self.register_map.points if p.function == function]
        return max(ends, default=0)


def _device(meter: MeterRegisters, unit_id: int, clock: Callable[[], float]) -> SimDevice:
    async def action(  # noqa: PLR0917 - signature fixed by pymodbus SimDevice.action
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: Any,
    ) -> None:
        if function_code in (3, 4):
            for addr, word in meter.registers_at(function_code, clock()).items():
                idx = addr - start_address
                if 0 <= idx < len(current_registers):
                    current_registers[idx] = word

    def block(function: int) -> list[SimData]:
        n = meter.size(function)
        if n == 0:
            return [SimData(0, count=1, values=0, datatype=SimType.INVALID)]
        return [SimData(0, count=n, values=0, datatype=SimType.REGISTERS, readonly=True)]

    bits = [SimData(0, count=16, values=False, datatype=SimType.BITS)]
    return SimDevice(
        id=unit_id,
        simdata=(bits, list(bits), block(3), block(4)),
        action=action,
    )


async def start_tcp_server(
    meter: MeterRegisters,
    host: str = "127.0.0.1",
    port: int = 5020,
    *,
    unit_id: int = 0,
    clock: Callable[[], float] = time.time,
) -> ModbusTcpServer:
    """Start listening in the background; stop with ``await server.shutdown()``.

    ``unit_id`` 0 answers every unit id.
    """
    server = ModbusTcpServer(_device(meter, unit_id, clock), address=(host, port))
    await server.serve_forever(background=True)
    return server


async def start_rtu_server(
    meter: MeterRegisters,
    port: str,
    *,
    baudrate: int = 9600,
    unit_id: int | Sequence[int] = 1,
    clock: Callable[[], float] = time.time,
) -> ModbusSerialServer:
    """Serve RTU frames on a serial device (e.g. one end of a pty link).

    Several ``unit_id``s simulate several identical meters on one bus.
    """
    ids = [unit_id] if isinstance(unit_id, int) else list(unit_id)
    server = ModbusSerialServer(
        [_device(meter, i, clock) for i in ids], framer=FramerType.RTU, port=port, baudrate=baudrate
    )
    await server.serve_forever(background=True)
    return server


def bound_port(server: ModbusTcpServer) -> int:
    """The TCP port a server started with ``port=0`` actually listens on."""
    sockets = getattr(server.transport, "sockets", None)
    if not sockets:
        raise RuntimeError("server is not listening")
    return int(sockets[0].getsockname()[1])


async def stop_server(server: ModbusTcpServer | ModbusSerialServer) -> None:
    """Stop a server started by ``start_tcp_server``/``start_rtu_server``."""
    await server.shutdown()  # type: ignore[no-untyped-call]
