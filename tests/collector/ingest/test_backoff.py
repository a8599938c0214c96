"""Jittered exponential backoff."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from collector.ingest.backoff import Backoff


@given(st.integers(0, 2**32), st.integers(1, 40))
def test_delays_stay_within_half_and_full_ceiling(seed: int, attempts: int) -> None:
    """Attempt n waits between half and all of min(max, initial * 2**n)."""
    b = Backoff(0.1, 5.0, random.Random(seed))
    for n in range(attempts):
        ceiling = min(5.0, 0.1 * 2**n)
        assert ceiling / 2 <= b.next_delay() <= ceiling


def test_reset_starts_over() -> None:
    """After reset the next delay is back at the initial range."""
    b = Backoff(1.0, 60.0, random.Random(1))
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.next_delay() <= 1.0


def test_jitter_differs_between_generators() -> None:
    """Two differently seeded backoffs do not wait in lockstep."""
    a = Backoff(1.0, 60.0, random.Random(1))
    b = Backoff(1.0, 60.0, random.Random(2))
    assert [a.next_delay() for _ in range(5)] != [b.next_delay() for _ in range(5)]
