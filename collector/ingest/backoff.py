"""Exponential backoff with jitter, for the supervisors that retry (never inside adapters)."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``initial_s`` up to ``max_s``; each is drawn in [d/2, d]."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s}, {max_s}")
        self._initial = initial_s
        self._max = max_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next_delay(self) -> float:
        ceiling = min(self._max, self._initial * 2.0 ** min(self._attempt, 62))
        self._attempt += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self._attempt = 0
