"""P1 telegram generator (DSMR 5.0 layout) with a valid CRC, driven by a ``LoadModel``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.pty_link import open_pty, write_or_drop

__all__ = ["P1PtyMeter", "crc16_arc", "make_telegram", "seal", "serve_tcp"]

_NL: Final = ZoneInfo("Europe/Amsterdam")


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0x8005 reflected, initial 0) as DSMR 4+ specifies for P1."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def seal(body: str) -> bytes:
    """Append the CRC line to a telegram body that ends with ``!``."""
    raw = body.encode("ascii")
    return raw + f"{crc16_arc(raw):04X}\r\n".encode("ascii")


def _dsmr_time(t_s: float) -> str:
    local = datetime.fromtimestamp(t_s, UTC).astimezone(_NL)
    flag = "S" if local.dst() else "W"
    return local.strftime("%y%m%d%H%M%S") + flag


def make_telegram(
    model: LoadModel, t_s: float, *, equipment_id: str = "E0000000000000001", gas_m3: float = 0.0
) -> bytes:
    """A DSMR 5.0 telegram at ``t_s``: tariff 1 by night (21-07h local), tariff 2 by day."""
    hour = datetime.fromtimestamp(t_s, UTC).astimezone(_NL).hour
    day = 7 <= hour < 21
    imp, exp = model.import_kwh(t_s), model.export_kwh(t_s)
    # split the single import register into two tariff registers in a fixed proportion
    t1, t2 = imp * 0.45, imp * 0.55
    gas_time = t_s - (t_s % 300)  # the gas meter reports every 5 minutes
    gas = gas_m3 + (gas_time - model.t0_s) / 3600 * 0.2 if gas_time > model.t0_s else gas_m3
    ident = equipment_id.encode().hex().upper()
    lines = [
        "/Tly5\\2TALLY-SIM-P1",
        "",
        "1-3:0.2.8(50)",
        f"0-0:1.0.0({_dsmr_time(t_s)})",
        f"0-0:96.1.1({ident})",
        f"1-0:1.8.1({t1:010.3f}*kWh)",
        f"1-0:1.8.2({t2:010.3f}*kWh)",
        f"1-0:2.8.1({exp * 0.5:010.3f}*kWh)",
        f"1-0:2.8.2({exp * 0.5:010.3f}*kWh)",
        f"0-0:96.14.0({'0002' if day else '0001'})",
        f"1-0:1.7.0({model.power_w(t_s) / 1000:06.3f}*kW)",
        "1-0:2.7.0(00.000*kW)",
        "0-1:24.1.0(003)",
        f"0-1:96.1.0({ident})",
        f"0-1:24.2.1({_dsmr_time(gas_time)})({gas:09.3f}*m3)",
        "!",
    ]
    return seal("\r\n".join(lines))


async def serve_tcp(
    model: LoadModel,
    host: str = "127.0.0.1",
    port: int = 2323,
    *,
    interval_s: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> asyncio.Server:
    """A P1-over-TCP bridge (like ser2net): every client gets a telegram each ``interval_s``."""

    async def client(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                writer.write(make_telegram(model, clock(), gas_m3=500.0))
                await writer.drain()
                await asyncio.sleep(interval_s)
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(client, host, port)


class P1PtyMeter:
    """A meter pushing telegrams into a pseudo-terminal; readers open ``self.path``."""

    def __init__(
        self,
        model: LoadModel,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        chunk: int = 0,
    ) -> None:
        self._model = model
        self._interval_s = interval_s
        self._clock = clock
        self._chunk = chunk
        self._master, self.path = open_pty()
        os.set_blocking(self._master, False)  # a meter talking to nobody must not stall
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.dropped_bytes = 0

    def start(self) -> P1PtyMeter:
        self._task = asyncio.create_task(self._run())
        return self

    def write(self, data: bytes) -> None:
        """Push raw bytes (tests inject noise or corrupt telegrams this way)."""
        step = self._chunk or len(data) or 1
        for i in range(0, len(data), step):
            self.dropped_bytes += write_or_drop(self._master, data[i : i + step])

    async def _run(self) -> None:
        while True:
            self.write(make_telegram(self._model, self._clock(), gas_m3=500.0))
            self.sent += 1
            await asyncio.sleep(self._interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        os.close(self._master)
