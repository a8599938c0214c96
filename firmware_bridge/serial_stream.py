"""Byte streams from a serial port (pyserial, non-blocking, driven by the asyncio loop) or TCP.

Both give the same small interface so protocol adapters do not care whether a P1 port is
a USB cable or a ser2net/ESP-link bridge on the network.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import serial

__all__ = ["ByteStream", "SerialStream", "TcpStream"]


class ByteStream(Protocol):
    """A duplex byte stream."""

    async def read(self) -> bytes:
        """Some bytes (at least one); b"" at end of stream."""
        ...

    async def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class SerialStream:
    """A serial device read without threads: the loop wakes us when the fd is readable."""

    def __init__(self, port: serial.Serial) -> None:
        self._port = port

    @classmethod
    def open(
        cls,
        device: str,
        *,
        baudrate: int = 115200,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
    ) -> SerialStream:
        """Open ``device``; raises OSError (pyserial's SerialException is one) on failure."""
        port = serial.Serial(
            device,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout=0,
            write_timeout=2,
        )
        return cls(port)

    @property
    def port(self) -> serial.Serial:
        return self._port

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        fd = self._port.fileno()
        while True:
            waiting = self._port.in_waiting
            if waiting:
                data: bytes = self._port.read(waiting)
                return data
            ready: asyncio.Future[None] = loop.create_future()

            def wake(fut: asyncio.Future[None] = ready) -> None:
                if not fut.done():
                    fut.set_result(None)

            loop.add_reader(fd, wake)
            try:
                await ready
            finally:
                loop.remove_reader(fd)

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._port.write, data)
        await asyncio.to_thread(self._port.flush)

    def set_baudrate(self, baudrate: int) -> None:
        self._port.baudrate = baudrate

    def close(self) -> None:
        self._port.close()


class TcpStream:
    """A TCP connection, e.g. to a ser2net or ESP-Link serial bridge."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout_s: float = 10.0) -> TcpStream:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def read(self) -> bytes:
        return await self._reader.read(4096)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()
