"""The source port: anything the agent can poll for readings.

A source is polled every ``interval_s`` seconds with the current time passed in; it returns the
readings it took (possibly none). It raises ``agent.errors.SourceError`` for a failed poll (the
agent logs it, counts it in status and polls again next interval); it never raises anything else.
Sources that keep state across restarts (simulated counters) persist it through the
``StateStore`` they are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from agent.protocol import Reading


@runtime_checkable
class StateStore(Protocol):
    """Small durable key/value store a source may use to survive restarts."""

    async def load_state(self, key: str) -> str | None: ...

    async def save_state(self, key: str, value: str) -> None: ...


@runtime_checkable
class Source(Protocol):
    """Port polled by the agent."""

    @property
    def name(self) -> str: ...

    @property
    def interval_s(self) -> float: ...

    async def read(self, now: datetime) -> Sequence[Reading]: ...

    async def close(self) -> None: ...
