"""Retry schedule of webhook deliveries (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from collector.errors import NotificationError

__all__ = ["DEFAULT_SCHEDULE_S", "RetrySchedule"]

# Delays after the 1st, 2nd, … failed attempt (the Standard Webhooks recommendation:
# immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); then the delivery has failed.
DEFAULT_SCHEDULE_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """``delays_s[k]``: wait after the (k+1)-th failed attempt; ``len(delays_s) + 1`` attempts
    in all."""

    delays_s: tuple[float, ...] = DEFAULT_SCHEDULE_S

    def __post_init__(self) -> None:
        if any(d < 0 for d in self.delays_s):
            raise NotificationError("retry delays must not be negative")

    @property
    def max_attempts(self) -> int:
        return len(self.delays_s) + 1

    def delay_after(self, attempts: int) -> float | None:
        """Seconds to wait after ``attempts`` failed attempts, or None: give up."""
        if attempts < 1:
            raise NotificationError("attempts start at 1")
        return self.delays_s[attempts - 1] if attempts <= len(self.delays_s) else None
