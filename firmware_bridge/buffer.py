"""A bounded, thread-safe buffer of readings for push sources (MQTT, HTTP, UDP, serial streams).

Producers (callbacks, reader tasks) ``add``; the agent's poll ``drain``s. When full the
oldest readings are dropped and counted, so a stalled agent cannot exhaust memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from agent.protocol import Reading

__all__ = ["ReadingBuffer"]


class ReadingBuffer:
    """Readings received since the last poll, oldest first."""

    def __init__(self, max_readings: int = 10_000) -> None:
        if max_readings < 1:
            raise ValueError("max_readings must be >= 1")
        self._items: deque[Reading] = deque()
        self._max = max_readings
        self._lock = threading.Lock()
        self.dropped = 0
        self.rejected = 0
        self.last_error: str | None = None

    def add(self, readings: Iterable[Reading]) -> None:
        with self._lock:
            for r in readings:
                if len(self._items) >= self._max:
                    self._items.popleft()
                    self.dropped += 1
                self._items.append(r)

    def reject(self, reason: str) -> None:
        """Count a payload that could not be decoded (it is not retried)."""
        with self._lock:
            self.rejected += 1
            self.last_error = reason

    def drain(self) -> list[Reading]:
        with self._lock:
            out = list(self._items)
            self._items.clear()
            return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
