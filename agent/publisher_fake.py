"""In-memory ``Publisher`` for tests: records messages; tests decide connectivity and acks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agent.errors import ProtocolError, PublishError
from agent.protocol_ack import Ack, ack_topic, encode_ack, peek_batch_key


class FakePublisher:
    """Acks every message at once unless ``hold_acks``; ``go_down``/``refuse`` simulate outages.

    Plays the collector too: unless ``hold_confirms``, each batch published on
    ``tally/v1/<device>/readings`` is confirmed on ``tally/v1/<device>/ack`` right after its
    PUBACK, as a committed one would be. ``deliver`` hands any message to the subscriber.
    """

    def __init__(self, *, hold_acks: bool = False, hold_confirms: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.hold_acks = hold_acks
        self.hold_confirms = hold_confirms
        self.handlers: dict[str, Callable[[bytes], None]] = {}
        self.refuse = False  # connect() raises while True
        self.connect_calls = 0
        self._connected = False
        self._down = asyncio.Event()
        self._down.set()
        self._held: list[tuple[asyncio.Future[None], str, bytes]] = []

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
            self._held.append((fut, topic, payload))
        else:
            fut.set_result(None)
            self._confirm(topic, payload)
        return fut

    def subscribe(self, topic: str, handler: Callable[[bytes], None]) -> None:
        self.handlers[topic] = handler

    def deliver(self, topic: str, payload: bytes) -> None:
        """A message arrives on ``topic`` (as the broker would hand it over)."""
        handler = self.handlers.get(topic)
        if handler is not None and self._connected:
            handler(payload)

    def _confirm(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        seq = peek_batch_key(payload)
        if self.hold_confirms or len(parts) != 4 or parts[3] != "readings" or seq is None:
            return
        try:
            ack = encode_ack(Ack(parts[2], seq, ((seq, seq),)))
        except ProtocolError:
            return
        asyncio.get_running_loop().call_soon(self.deliver, ack_topic(parts[2]), ack)

    def release(self) -> None:
        """Acknowledge every held message."""
        for fut, topic, payload in self._held:
            if not fut.done():
                fut.set_result(None)
                self._confirm(topic, payload)
        self._held.clear()

    async def close(self) -> None:
        self._connected = False
        self._down.set()
        for fut, _, _ in self._held:
            if not fut.done():
                fut.set_exception(PublishError("closed"))
                fut.exception()
        self._held.clear()
