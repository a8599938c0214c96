"""Reconnect delays: exponential backoff with full jitter (pure; the caller sleeps)."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): uniform in [0, min(cap, base·2^n)].

    Full jitter spreads a fleet that lost its broker at the same instant over the whole window,
    so the broker does not meet every device again at the same instant.
    """
    if attempt < 0 or base_s <= 0 or cap_s <= 0:
        raise ValueError("attempt must be >= 0 and base_s, cap_s > 0")
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 62))
    return rng.uniform(0.0, ceiling)
