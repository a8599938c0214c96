"""The IEC 62056-21 mode C adapter: sign on, acknowledge, read the data block, decode it.

Exchange (reader → meter / meter → reader)::

    → /?<address>!CR LF                  request at 300 baud, 7E1
    ← /XXXZ<ident>CR LF                   Z: the highest baud rate the meter offers
    → ACK 0 Z 0 CR LF                     protocol 0, baud Z, mode 0 = data readout
    ← STX <data lines> ! CR LF ETX BCC    at the new baud rate
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from agent.errors import SourceError
from agent.protocol import Reading
from firmware_bridge.errors import DecodeError, DeviceError
from firmware_bridge.iec62056.readout import (
    BAUD_RATES,
    ETX,
    STX,
    ObisPoint,
    parse_data_block,
    parse_identification,
    to_measurements,
)
from firmware_bridge.measurement import to_readings
from firmware_bridge.serial_stream import SerialStream

__all__ = ["IecReadoutSource", "read_data_block"]

ACK = 0x06


async def _read_until(
    stream: SerialStream, buf: bytearray, done: Callable[[bytearray], int]
) -> bytes:
    """Read into ``buf`` until ``done(buf)`` returns the length of a complete message."""
    while (n := done(buf)) <= 0:
        buf += await stream.read()
    message = bytes(buf[:n])
    del buf[:n]
    return message


def _line_end(buf: bytearray) -> int:
    start = buf.find(b"/")
    if start > 0:
        del buf[:start]
    i = buf.find(b"\r\n")
    return i + 2 if buf.startswith(b"/") and i >= 0 else 0


def _block_end(buf: bytearray) -> int:
    start = buf.find(bytes([STX]))
    if start > 0:
        del buf[:start]
    elif start < 0:
        buf.clear()
        return 0
    i = buf.find(bytes([ETX]))
    return i + 2 if 0 <= i < len(buf) - 1 else 0


async def read_data_block(
    stream: SerialStream, *, address: str = "", switch_baud: bool = True
) -> bytes:
    """Run one mode C readout and return the raw ``STX … ETX BCC`` block."""
    buf = bytearray()
    await stream.write(b"/?" + address.encode("ascii") + b"!\r\n")
    ident = await _read_until(stream, buf, _line_end)
    _, baud, _ = parse_identification(ident)
    z = next(k for k, v in BAUD_RATES.items() if v == baud)
    await stream.write(bytes([ACK]) + b"0" + z.encode() + b"0\r\n")
    if switch_baud:
        await asyncio.sleep(0.25)  # the meter switches after the acknowledgement
        stream.set_baudrate(baud)
    return await _read_until(stream, buf, _block_end)


class IecReadoutSource:
    """A ``Source`` reading a meter's optical port (IEC 62056-21 mode C) at each poll."""

    def __init__(
        self,
        name: str,
        device: str,
        *,
        meter: str | None = None,
        interval_s: float = 300.0,
        address: str = "",
        timeout_s: float = 30.0,
        switch_baud: bool = True,
        obis: dict[str, ObisPoint] | None = None,
    ) -> None:
        self._name = name
        self._device = device
        self._meter = meter or name
        self._interval_s = interval_s
        self._address = address
        self._timeout_s = timeout_s
        self._switch_baud = switch_baud
        self._obis = obis

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval_s

    async def read(self, now: datetime) -> Sequence[Reading]:
        ts_ms = int(now.timestamp() * 1000)
        stream: SerialStream | None = None
        try:
            stream = SerialStream.open(self._device, baudrate=300, bytesize=7, parity="E")
            async with asyncio.timeout(self._timeout_s):
                frame = await read_data_block(
                    stream, address=self._address, switch_baud=self._switch_baud
                )
            readings = to_readings(
                self._meter, to_measurements(parse_data_block(frame), ts_ms, self._obis)
            )
        except TimeoutError as exc:
            raise SourceError(
                f"{self._name}: no complete answer within {self._timeout_s:g} s", source=self._name
            ) from exc
        except (DecodeError, DeviceError, OSError, ValueError) as exc:
            raise SourceError(f"{self._name}: {exc}", source=self._name) from exc
        finally:
            if stream is not None:
                stream.close()
        if not readings:
            raise SourceError(
                f"{self._name}: data block holds no mapped OBIS code", source=self._name
            )
        return readings

    async def close(self) -> None:
        return None
