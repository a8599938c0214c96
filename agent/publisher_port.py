"""The publisher port: send a message and learn, through an awaitable, when the broker has it;
and hear the collector's acknowledgements on a subscribed topic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Publisher(Protocol):
    """QoS 1 publishing. ``publish`` returns a future completed on PUBACK.

    A message handed over while connected stays with the publisher across reconnects (it is
    re-sent until acknowledged); ``connect`` raises ``PublishError``; the retry policy belongs
    to the caller.
    """

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def wait_disconnected(self) -> None: ...

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> asyncio.Future[None]:
        ...

    def subscribe(self, topic: str, handler: Callable[[bytes], None]) -> None:
        """Deliver every message on ``topic`` (QoS 1, retained ones too) to ``handler``, in the
        event loop; the subscription is renewed on every connection."""

    async def close(self) -> None: ...
