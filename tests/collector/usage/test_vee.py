"""Gaps: flagged, estimated by interpolation or from a same-hour profile, replaced by actuals."""

from __future__ import annotations

import numpy as np
import pytest

from collector.usage import MeterConfig, UsageFlag, bucket_edges, derive_usage

T0 = 1_774_915_200.0  # 2026-03-31T00:00:00Z
DAY = 86400.0


def test_short_counter_gap_spreads_the_known_increase_evenly() -> None:
    """0 @00:00, 1 @00:15, 4 @01:00: the 3 kWh of the 45-min gap are 1 per bucket, estimated."""
    ts = T0 + np.asarray([0.0, 900.0, 3600.0])
    edges = bucket_edges(T0, T0 + 3600, "15m")
    u = derive_usage("cumulative", ts, np.asarray([0.0, 1.0, 4.0]), edges)
    assert u.quantity.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert u.estimated.tolist() == pytest.approx([0.0, 1.0, 1.0, 1.0])
    assert u.flags[2] & UsageFlag.GAP
    assert u.flags[2] & UsageFlag.ESTIMATED_INTERPOLATED


def test_short_gauge_gap_is_interpolated_linearly() -> None:
    """2 kW @00:00 and 00:15, then 4 kW @01:00: the gap integral (2+4)/2 × 0.75 h is estimated."""
    ts = T0 + np.asarray([0.0, 900.0, 3600.0])
    u = derive_usage("gauge", ts, np.asarray([2.0, 2.0, 4.0]), bucket_edges(T0, T0 + 3600, "15m"))
    assert u.total == pytest.approx(0.5 + 2.25)
    assert u.total_estimated == pytest.approx(2.25)


def _working_hours_history() -> tuple[np.ndarray, np.ndarray]:
    """Three weeks of 15-min readings using 1 kWh per 15 min between 08:00 and 18:00 UTC."""
    ts = T0 - 21 * DAY + np.arange(0, 21 * 96 + 1) * 900.0
    hour = ((ts - 900.0) % DAY) // 3600  # hour of the interval ending at each reading
    inc = np.where((hour >= 8) & (hour < 18), 1.0, 0.0)
    inc[0] = 0.0
    return ts, np.cumsum(inc)


def test_long_gap_follows_same_hour_profile_scaled_to_known_total() -> None:
    """A 24-h gap with a 20 kWh increase: 0.5 kWh in each of the 40 working-hour buckets."""
    hts, hv = _working_hours_history()
    ts = np.r_[hts, T0 + DAY]
    v = np.r_[hv, hv[-1] + 20.0]
    u = derive_usage("cumulative", ts, v, bucket_edges(T0, T0 + DAY, "15m"))
    hours = (u.starts % 86400) // 3600
    work = (hours >= 8) & (hours < 18)
    assert u.quantity[work] == pytest.approx(np.full(40, 0.5))
    assert u.quantity[~work] == pytest.approx(np.zeros(56))
    assert u.estimated == pytest.approx(u.quantity)
    assert np.all(u.flags & UsageFlag.ESTIMATED_PROFILE)


def test_long_gap_without_history_falls_back_to_even_spread() -> None:
    """No history: the 24 kWh of a 24-h gap are spread evenly (0.25 per bucket), flagged."""
    ts = np.asarray([T0, T0 + DAY])
    u = derive_usage("cumulative", ts, np.asarray([0.0, 24.0]), bucket_edges(T0, T0 + DAY, "15m"))
    assert u.quantity == pytest.approx(np.full(96, 0.25))
    assert np.all(u.flags & UsageFlag.ESTIMATED_INTERPOLATED)


def test_actual_readings_replace_the_estimates() -> None:
    """When the gap's readings arrive, the same derivation yields actuals and no estimate."""
    hts, hv = _working_hours_history()
    gap_ts = T0 + np.arange(1, 97) * 900.0
    gap_v = hv[-1] + np.arange(1, 97) * (20.0 / 96)
    ts, v = np.r_[hts, gap_ts], np.r_[hv, gap_v]
    u = derive_usage("cumulative", ts, v, bucket_edges(T0, T0 + DAY, "15m"))
    assert u.quantity == pytest.approx(np.full(96, 20.0 / 96))
    assert u.total_estimated == 0.0
    assert not np.any(u.flags & (UsageFlag.GAP | UsageFlag.ESTIMATED_PROFILE))


def test_quarantined_gap_is_not_estimated() -> None:
    """A gap whose increase exceeds the physical maximum is held out, not spread."""
    ts = np.asarray([T0, T0 + 7200.0])
    u = derive_usage("cumulative", ts, np.asarray([0.0, 1000.0]),
                     bucket_edges(T0, T0 + 7200, "15m"), config=MeterConfig(max_rate_per_hour=10.0))
    assert u.total == 0.0
    assert u.quarantined.sum() == pytest.approx(1000.0)
    assert u.total_estimated == 0.0


def test_delta_after_a_gap_covers_the_whole_gap() -> None:
    """A delta of 3 reported 45 min after the previous reading is spread over the gap, estimated."""
    ts = T0 + np.asarray([900.0, 3600.0])
    u = derive_usage("delta", ts, np.asarray([1.0, 3.0]), bucket_edges(T0, T0 + 3600, "15m"))
    assert u.quantity.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert u.estimated.tolist() == pytest.approx([0.0, 1.0, 1.0, 1.0])


def test_long_gauge_gap_uses_the_unscaled_profile() -> None:
    """A gauge at 2 kW for three weeks, then silent a day: 0.5 kWh per quarter hour, estimated."""
    ts = np.r_[T0 - 21 * DAY + np.arange(0, 21 * 96 + 1) * 900.0, T0 + DAY]
    v = np.full(ts.shape[0], 2.0)
    u = derive_usage("gauge", ts, v, bucket_edges(T0, T0 + DAY, "15m"))
    assert u.quantity == pytest.approx(np.full(96, 0.5))
    assert u.estimated == pytest.approx(u.quantity)
    assert np.all(u.flags & UsageFlag.ESTIMATED_PROFILE)


def test_gap_longer_than_max_gap_is_quarantined_not_spread() -> None:
    """A reading from a wrong clock (year 2000) is not spread over 26 years: held out instead."""
    y2000 = 946_684_800.0
    ts = np.asarray([y2000, T0, T0 + 900.0])
    u = derive_usage("cumulative", ts, np.asarray([5.0, 1000.0, 1001.0]),
                     bucket_edges(T0 - DAY, T0 + 900, "15m"))
    assert u.total == pytest.approx(1.0)
    assert u.quarantined.sum() == pytest.approx(995.0)
    assert u.quarantined[95] == pytest.approx(995.0)  # the quarter hour before the 2026 reading
    assert u.coverage[:95].max() == 0.0
    assert u.flags[95] & UsageFlag.GAP_TOO_LONG


def test_long_gap_after_a_near_zero_history_still_bills_the_register_difference() -> None:
    """History of subnormal usage (profile weight ~1e-308) does not overflow the scaled estimate."""
    ts = np.asarray([T0, T0 + 515.0, T0 + 4116.0])
    u = derive_usage("cumulative", ts, np.asarray([0.0, 2.0**-1023, 14.0]),
                     bucket_edges(T0, T0 + 4500.0, "15m"))
    assert np.all(np.isfinite(u.quantity))
    assert u.total == pytest.approx(14.0)
