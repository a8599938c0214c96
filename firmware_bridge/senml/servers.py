"""SenML over the local network: an HTTP POST endpoint (h11) and a UDP endpoint, as Sources.

Devices push packs; the servers decode them at once (a bad pack gets HTTP 400 and is
counted) and buffer the readings; each agent poll returns what arrived since the last one.
The servers start at the first poll (or with ``await source.start()``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

import h11

from agent.errors import SourceError
from agent.protocol import Reading
from firmware_bridge.buffer import ReadingBuffer
from firmware_bridge.errors import DecodeError
from firmware_bridge.senml.readings import senml_readings

__all__ = ["SenmlHttpSource", "SenmlUdpSource"]

MAX_BODY: Final = 262_144


class _PackSink:
    """Decode a pack into the buffer; returns an error text or None."""

    def __init__(self, buffer: ReadingBuffer, meter: str, clock: Callable[[], float]) -> None:
        self._buffer = buffer
        self._meter = meter
        self._clock = clock

    def __call__(self, payload: bytes) -> str | None:
        try:
            readings = senml_readings(payload, int(self._clock() * 1000), self._meter)
        except DecodeError as exc:
            self._buffer.reject(str(exc))
            return str(exc)
        self._buffer.add(readings)
        return None


class _BufferedSource(abc.ABC):
    def __init__(
        self,
        name: str,
        meter: str | None,
        interval_s: float,
        max_readings: int,
        clock: Callable[[], float],
    ) -> None:
        self._name = name
        self._interval_s = interval_s
        self.buffer = ReadingBuffer(max_readings)
        self._sink = _PackSink(self.buffer, meter or name, clock)
        self._started = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @abc.abstractmethod
    async def start(self) -> None:
        raise NotImplementedError

    async def read(self, now: datetime) -> Sequence[Reading]:
        if not self._started:
            try:
                await self.start()
            except OSError as exc:
                raise SourceError(f"{self._name}: cannot listen: {exc}", source=self._name) from exc
        return self.buffer.drain()


class SenmlHttpSource(_BufferedSource):
    """Accepts ``POST <path>`` with a SenML JSON (``application/senml+json``) or CBOR body."""

    def __init__(
        self,
        name: str,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - devices on the LAN post to the agent
        port: int = 8080,
        path: str = "/senml",
        meter: str | None = None,
        interval_s: float = 60.0,
        max_readings: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, meter, interval_s, max_readings, clock)
        self._host, self._port, self._path = host, port, path
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        self._started = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16_384)
        try:
            async with asyncio.timeout(30):
                await self._exchange(conn, reader, writer)
        except (TimeoutError, h11.ProtocolError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65_536)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    return
                continue
            if isinstance(event, h11.Request):
                request, body = event, bytearray()
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    await self._respond(conn, writer, 413, b"pack too large\n")
                    return
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                status, text = self._handle(request, bytes(body))
                await self._respond(conn, writer, status, text)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
                request = None
            elif isinstance(event, h11.ConnectionClosed):
                return

    def _handle(self, request: h11.Request, body: bytes) -> tuple[int, bytes]:
        if request.target.split(b"?")[0] != self._path.encode():
            return 404, b"not found\n"
        if request.method != b"POST":
            return 405, b"POST a SenML pack\n"
        error = self._sink(body)
        if error is not None:
            return 400, error.encode("utf-8", "replace")[:1000] + b"\n"
        return 204, b""

    @staticmethod
    async def _respond(
        conn: h11.Connection, writer: asyncio.StreamWriter, status: int, text: bytes
    ) -> None:
        headers = [("content-length", str(len(text)))]
        if text:
            headers.append(("content-type", "text/plain; charset=utf-8"))
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        if text:
            writer.write(conn.send(h11.Data(data=text)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._started = False


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, sink: _PackSink) -> None:
        self._sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._sink(data)


class SenmlUdpSource(_BufferedSource):
    """Accepts one SenML pack (JSON or CBOR) per UDP datagram."""

    def __init__(
        self,
        name: str,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - devices on the LAN send to the agent
        port: int = 5683,
        meter: str | None = None,
        interval_s: float = 60.0,
        max_readings: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, meter, interval_s, max_readings, clock)
        self._host, self._port = host, port
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def port(self) -> int:
        if self._transport is None:
            return self._port
        return int(self._transport.get_extra_info("sockname")[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._sink), local_addr=(self._host, self._port)
        )
        self._started = True

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._started = False
