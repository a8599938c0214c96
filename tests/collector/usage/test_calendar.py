"""Bucket grids in time zones: DST days, half-hour zones, far zones, months, rollups."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from collector.errors import UsageError
from collector.usage import bucket_edges, derive_usage, rollup


def _u(*a: int) -> float:
    return datetime(*a, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_amsterdam_spring_forward_day_has_23_hours() -> None:
    """The last Sunday of March 2026 (29th) is 23 h long in Europe/Amsterdam."""
    e = bucket_edges(_u(2026, 3, 28, 12), _u(2026, 3, 30, 12), "1d", "Europe/Amsterdam")
    assert e[1] == _u(2026, 3, 28, 23)  # 00:00 CET
    assert e[2] == _u(2026, 3, 29, 22)  # 00:00 CEST
    assert (e[2] - e[1]) == 23 * 3600


def test_amsterdam_fall_back_day_has_25_hours() -> None:
    """25 October 2026 is 25 h long in Europe/Amsterdam."""
    e = bucket_edges(_u(2026, 10, 25, 0), _u(2026, 10, 25, 12), "1d", "Europe/Amsterdam")
    assert e[0] == _u(2026, 10, 24, 22)
    assert e[1] == _u(2026, 10, 25, 23)


def test_constant_counter_over_dst_days_in_amsterdam() -> None:
    """1 kWh per 15 min: 92 kWh on 29 March, 100 kWh on 25 October (Europe/Amsterdam)."""
    for day, expected in (((2026, 3, 28, 12), 92.0), ((2026, 10, 24, 12), 100.0)):
        start = _u(*day)
        ts = start + np.arange(0, 3 * 96) * 900.0
        edges = bucket_edges(start + 12 * 3600, start + 36 * 3600, "1d", "Europe/Amsterdam")
        u = derive_usage("cumulative", ts, np.arange(ts.shape[0], dtype=float), edges)
        assert u.quantity[0] == pytest.approx(expected)


def test_st_johns_hours_start_at_half_past_utc() -> None:
    """America/St_Johns is UTC−02:30 in summer: local hours start at hh:30 UTC."""
    e = bucket_edges(_u(2026, 7, 1, 12), _u(2026, 7, 1, 14), "1h", "America/St_Johns")
    assert e.tolist() == [_u(2026, 7, 1, 11, 30), _u(2026, 7, 1, 12, 30),
                          _u(2026, 7, 1, 13, 30), _u(2026, 7, 1, 14, 30)]


def test_kiritimati_days_start_at_ten_utc() -> None:
    """Pacific/Kiritimati is UTC+14: its midnight is 10:00 UTC the previous day."""
    e = bucket_edges(_u(2026, 1, 1, 12), _u(2026, 1, 2, 12), "1d", "Pacific/Kiritimati")
    assert e.tolist() == [_u(2026, 1, 1, 10), _u(2026, 1, 2, 10), _u(2026, 1, 3, 10)]


def test_months_follow_local_midnights() -> None:
    """Monthly edges are local first-of-month midnights (Amsterdam: CET then CEST)."""
    e = bucket_edges(_u(2026, 2, 10), _u(2026, 4, 10), "1mo", "Europe/Amsterdam")
    assert e.tolist() == [_u(2026, 1, 31, 23), _u(2026, 2, 28, 23),
                          _u(2026, 3, 31, 22), _u(2026, 4, 30, 22)]


def test_rollup_of_15_minute_values_into_local_days() -> None:
    """Rolling 15-minute ones up into Amsterdam days gives 92 on the 23-hour day."""
    starts = np.arange(_u(2026, 3, 28, 23), _u(2026, 3, 30, 22), 900, dtype=np.int64)
    s, e, sums = rollup(starts, np.ones(starts.shape[0]), "1d", "Europe/Amsterdam")
    assert sums.tolist() == [92.0, 96.0]
    assert (e - s).tolist() == [23 * 3600, 24 * 3600]


def test_unknown_zone_is_rejected() -> None:
    """A misspelt zone is a UsageError, not a silent UTC."""
    with pytest.raises(UsageError):
        bucket_edges(0.0, 3600.0, "1h", "Europe/Amsterdm")
