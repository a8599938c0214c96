"""Reconnect backoff: full jitter within an exponentially growing, capped window."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.backoff import backoff_delay


@given(st.integers(0, 200), st.floats(0.001, 10), st.floats(0.001, 600), st.integers(0, 2**32))
def test_delay_is_within_the_window(attempt: int, base: float, cap: float, seed: int) -> None:
    """Every delay lies in [0, min(cap, base * 2^attempt)]."""
    delay = backoff_delay(attempt, base_s=base, cap_s=cap, rng=random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2.0 ** min(attempt, 62))


def test_delays_are_spread_not_synchronised() -> None:
    """Many devices at the same attempt pick widely different delays (full jitter)."""
    rng = random.Random(7)
    delays = [backoff_delay(5, base_s=1, cap_s=60, rng=rng) for _ in range(1000)]
    assert min(delays) < 3
    assert max(delays) > 29
    assert len({round(d, 3) for d in delays}) > 900


def test_window_grows_then_caps() -> None:
    """The mean delay doubles per attempt until the cap is reached."""
    rng = random.Random(1)

    def mean(attempt: int) -> float:
        return sum(backoff_delay(attempt, base_s=1, cap_s=16, rng=rng) for _ in range(4000)) / 4000

    assert 0.4 < mean(0) < 0.6
    assert 1.8 < mean(2) < 2.2
    assert 7.5 < mean(8) < 8.5  # capped at 16: mean 8


def test_bad_arguments_raise() -> None:
    """A negative attempt or non-positive base is a programming error."""
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, base_s=1, cap_s=2, rng=random.Random())
