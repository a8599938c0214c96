"""The P1 adapter: a reader task frames the stream; each poll returns the telegrams received.

A silent port, a dropped connection, or only corrupt telegrams since the last poll each
make that poll fail with ``SourceError`` (the agent flags it and polls again).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from agent.errors import SourceError
from agent.protocol import Reading
from firmware_bridge.dsmr.framer import TelegramFramer
from firmware_bridge.dsmr.telegram import DsmrSpec, decode_telegram
from firmware_bridge.errors import DecodeError, DeviceError
from firmware_bridge.measurement import Measurement, to_readings
from firmware_bridge.serial_stream import ByteStream

__all__ = ["P1Source"]


class P1Source:
    """A ``Source`` reading DSMR telegrams pushed by a smart meter's P1 port."""

    def __init__(
        self,
        name: str,
        open_stream: Callable[[], Awaitable[ByteStream]],
        *,
        spec: DsmrSpec = DsmrSpec.V5,
        meter: str | None = None,
        interval_s: float = 60.0,
        wait_s: float = 15.0,
        keep_all: bool = False,
        max_telegrams: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._open_stream = open_stream
        self._spec = spec
        self._meter = meter or name
        self._interval_s = interval_s
        self._wait_s = wait_s
        self._keep_all = keep_all
        self._clock = clock
        self._telegrams: deque[list[Measurement]] = deque(maxlen=max_telegrams)
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.framer = TelegramFramer()
        self.bad_telegrams = 0
        self._last_error: str | None = None
        self._emitted_ts: dict[str, int] = {}  # newest time returned per metric

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval_s

    async def _run(self) -> None:
        stream = await self._open_stream()
        try:
            while True:
                data = await stream.read()
                if not data:
                    raise DeviceError("P1 stream closed by the other end", source=self._name)
                for frame in self.framer.feed(data):
                    received_ms = int(self._clock() * 1000)
                    try:
                        self._telegrams.append(decode_telegram(frame, received_ms, self._spec))
                    except DecodeError as exc:
                        self.bad_telegrams += 1
                        self._last_error = str(exc)
                    self._arrived.set()
        finally:
            stream.close()

    def _take(self) -> list[Measurement]:
        """Measurements to return; a gas value is repeated in every telegram until the gas
        meter's next capture, so a (metric, time) already returned is not returned again."""
        batches = list(self._telegrams)
        self._telegrams.clear()
        self._arrived.clear()
        if not self._keep_all and batches:
            batches = batches[-1:]
        out: list[Measurement] = []
        for m in (m for b in batches for m in b):
            if m.ts_ms <= self._emitted_ts.get(m.metric, -1):
                continue
            self._emitted_ts[m.metric] = m.ts_ms
            out.append(m)
        return out

    async def read(self, now: datetime) -> Sequence[Reading]:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"p1-reader-{self._name}")
        if not self._telegrams and self._wait_s > 0:
            await self._wait_for_telegram(self._task)
        measurements = self._take()
        if not measurements:
            task = self._task
            if task.done():
                self._task = None  # restarted at the next poll
                exc = None if task.cancelled() else task.exception()
                raise SourceError(f"{self._name}: P1 reader stopped: {exc}", source=self._name)
            reason = self._last_error or f"no valid telegram within {self._wait_s:g} s"
            self._last_error = None
            raise SourceError(f"{self._name}: {reason}", source=self._name)
        self._last_error = None
        try:
            return to_readings(self._meter, measurements)
        except DecodeError as exc:
            raise SourceError(f"{self._name}: {exc}", source=self._name) from exc

    async def _wait_for_telegram(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._wait_s):
                while not self._telegrams and not task.done():
                    self._arrived.clear()
                    waiter = asyncio.ensure_future(self._arrived.wait())
                    try:
                        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waiter.cancel()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
