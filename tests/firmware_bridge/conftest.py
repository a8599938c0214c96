"""Helpers shared by the firmware bridge tests: a settable clock and fixed instants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting at 2026-01-01T00:00:00Z."""
    return FakeClock()
