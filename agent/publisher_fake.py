"""In-memory ``Publisher`` for tests: records messages; tests decide connectivity and acks."""

from __future__ import annotations

import asyncio

from agent.errors import PublishError


class FakePublisher:
    """Acks every message at once unless ``hold_acks``; ``go_down``/``refuse`` simulate outages."""

    def __init__(self, *, hold_acks: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.hold_acks = hold_acks
        self.refuse = False  # connect() raises while True
        self.connect_calls = 0
        self._connected = False
        self._down = asyncio.Event()
        self._down.set()
        self._held: list[asyncio.Future[None]] = []

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self.connect_calls += 1
        if self.refuse:
            raise PublishError("fake broker unreachable")
        self._connected = True
        self._down.clear()

    async def wait_disconnected(self) -> None:
        await self._down.wait()

    def go_down(self) -> None:
        """Drop the connection, as a broker-initiated disconnect would."""
        self._connected = False
        self._down.set()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.messages.append((topic, payload, retain))
        if self.hold_acks:
            self._held.append(fut)
        else:
            fut.set_result(None)
        return fut

    def release(self) -> None:
        """Acknowledge every held message."""
        for fut in self._held:
            if not fut.done():
                fut.set_result(None)
        self._held.clear()

    async def close(self) -> None:
        self._connected = False
        self._down.set()
        for fut in self._held:
            if not fut.done():
                fut.set_exception(PublishError("closed"))
                fut.exception()
        self._held.clear()
