"""Rate limiting of enrollment attempts against code guessing (pure; time passed in).

Failed attempts are counted per client address in a sliding window; past ``max_failures`` the
address is refused until its oldest failure leaves the window. A global cap bounds what a
distributed guesser gets: at most ``global_failures`` failures per window across all addresses.
With the defaults (5 per address, 200 in total per 10 minutes) a 30^10 code space would take
longer than the age of the universe to search.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["AttemptLimiter"]


@dataclass(slots=True)
class AttemptLimiter:
    """Counts failed attempts; ``allowed`` before checking a code, ``failed`` after a miss."""

    max_failures: int = 5
    global_failures: int = 200
    window_s: float = 600.0
    _by_client: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def _trim(self, times: deque[float], now_s: float) -> None:
        while times and times[0] <= now_s - self.window_s:
            times.popleft()

    def allowed(self, client: str, now_s: float) -> bool:
        self._trim(self._all, now_s)
        times = self._by_client.get(client)
        if times is not None:
            self._trim(times, now_s)
            if not times:
                del self._by_client[client]
                times = None
        if len(self._all) >= self.global_failures:
            return False
        return times is None or len(times) < self.max_failures

    def failed(self, client: str, now_s: float) -> None:
        self._by_client.setdefault(client, deque()).append(now_s)
        self._all.append(now_s)
