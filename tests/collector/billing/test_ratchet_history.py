"""Pure ratchet history: which months a period looks back on and the engine's peak arrays."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from collector.billing.periods import PeriodKey
from collector.billing.ratchets import previous_peaks, previous_periods, ratchet_months
from collector.billing.segments import Segment
from collector.rating import parse_plan

keys = st.builds(PeriodKey, st.integers(1975, 9000), st.integers(1, 12))


def _plan(months: int) -> Any:
    return parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "d",
            "version": 1,
            "currency": "EUR",
            "charges": [
                {
                    "type": "demand",
                    "id": "demand",
                    "unit": "kW",
                    "price": "1",
                    "ratchet": {"percent": 80, "months": months},
                }
            ],
        }
    )


def _segment(index: int, customer: int, series: int) -> Segment:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    return Segment(index, customer, 100 + index, series, 1, t, t, Fraction(1))


@given(keys, st.integers(0, 36))
def test_previous_periods_are_the_months_just_before(key: PeriodKey, months: int) -> None:
    """``months`` consecutive periods, oldest first, the last one right before ``key``."""
    got = previous_periods(key, months)
    assert len(got) == months
    expected: list[str] = []
    k = key
    for _ in range(months):
        k = k.previous()
        expected.insert(0, str(k))
    assert got == expected
    assert all(p < str(key) for p in got)


def test_peaks_land_in_their_month_column_most_recent_last() -> None:
    """March with a 3-month ratchet: columns Dec, Jan, Feb; unknown months are NaN."""
    segs = [_segment(0, 1, 7), _segment(1, 2, 8)]
    history = {(1, 7, "demand"): {"2026-02": Decimal("60"), "2025-12": Decimal("120.5")}}
    arr = previous_peaks(_plan(3), segs, {0: PeriodKey(2026, 3), 1: PeriodKey(2026, 3)}, history)
    assert arr["demand"].shape == (2, 3)
    assert arr["demand"][0, 0] == 120.5
    assert np.isnan(arr["demand"][0, 1])
    assert arr["demand"][0, 2] == 60.0
    assert np.isnan(arr["demand"][1]).all()


def test_ratchet_months_is_the_longest_look_back() -> None:
    """The history to load covers the longest ratchet of the plans (0 without ratchets)."""
    assert ratchet_months([_plan(3), _plan(11)]) == 11
    assert ratchet_months([]) == 0
