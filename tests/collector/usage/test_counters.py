"""Hand-checked counter rules: resets, rollovers, replacements, glitches, max rate, jitter."""

from __future__ import annotations

import numpy as np
import pytest

from collector.usage import MeterConfig, Replacement, UsageFlag, bucket_edges, derive_usage

T0 = 1_774_915_200.0  # 2026-03-31T00:00:00Z, a bucket edge


def _run(values: list[float], config: MeterConfig | None = None, step: float = 900.0,
         replacements: tuple[Replacement, ...] = ()):  # type: ignore[no-untyped-def]
    ts = T0 + np.arange(len(values)) * step
    edges = bucket_edges(ts[0], ts[-1] + 1, "15m")
    return derive_usage("cumulative", ts, np.asarray(values, dtype=float), edges,
                        config=config, replacements=replacements)


def test_monotone_counter_increases_per_interval() -> None:
    """Each bucket holds the increase between its two readings."""
    u = _run([10.0, 10.5, 11.25, 12.0])
    assert u.quantity[:3].tolist() == pytest.approx([0.5, 0.75, 0.75])
    assert u.total == pytest.approx(2.0)


def test_reset_takes_new_value_as_increase() -> None:
    """10 → 12 → 1 → 3: a reset to near 0 counts the new value (2 + 1 + 2 = 5)."""
    u = _run([10.0, 12.0, 1.0, 3.0])
    assert u.quantity[:3].tolist() == pytest.approx([2.0, 1.0, 2.0])
    assert u.flags[1] & UsageFlag.RESET


def test_rollover_of_mechanical_register_wraps() -> None:
    """99,999.5 → 99,999.9 → 0.4 → 0.9 on a 100,000 register: 0.4 + 0.5 + 0.5."""
    u = _run([99_999.5, 99_999.9, 0.4, 0.9], MeterConfig(register_max=100_000.0))
    assert u.quantity[:3].tolist() == pytest.approx([0.4, 0.5, 0.5])
    assert u.flags[1] & UsageFlag.ROLLOVER
    assert not u.flags[1] & UsageFlag.RESET


def test_decrease_far_from_register_max_is_a_reset_not_a_rollover() -> None:
    """50,000 → 0.3 on a 100,000 register is a reset (the top was out of reach): increase 0.3."""
    u = _run([49_999.0, 50_000.0, 0.3], MeterConfig(register_max=100_000.0, glitch_window=0))
    assert u.quantity[1] == pytest.approx(0.3)
    assert u.flags[1] & UsageFlag.RESET


def test_replacement_keeps_continuity() -> None:
    """Old meter 500 → 501, swapped (final 501.5, new 0.2), new meter 0.7 → 1.7: 1 + 1 + 1."""
    rep = Replacement(at=T0 + 1350.0, old_final=501.5, new_initial=0.2)
    u = _run([500.0, 501.0, 0.7, 1.7], replacements=(rep,))
    assert u.quantity[:3].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert u.flags[1] & UsageFlag.REPLACEMENT
    assert not np.any(u.flags & UsageFlag.RESET)


def test_glitch_to_zero_is_ignored_evcc_case() -> None:
    """53,000 → 53,000.5 → 0 → 53,001: the 0 is a glitch; no 53 MWh spike, total 1.0."""
    u = _run([53_000.0, 53_000.5, 0.0, 53_001.0])
    assert u.total == pytest.approx(1.0)
    assert u.quantity.max() < 1.0
    assert u.flags[2] & UsageFlag.GLITCH


def test_glitch_lasting_several_readings_within_window_is_ignored() -> None:
    """Two low readings before the return (window 3) are both ignored; total 2.0."""
    u = _run([100.0, 101.0, 0.0, 0.0, 102.0])
    assert u.total == pytest.approx(2.0)
    assert u.flags[2] & UsageFlag.GLITCH
    assert u.flags[3] & UsageFlag.GLITCH


def test_upward_spike_is_ignored() -> None:
    """100 → 9,999 → 101 → 102: the spike reading is dropped; total 2.0."""
    u = _run([100.0, 9_999.0, 101.0, 102.0])
    assert u.total == pytest.approx(2.0)
    assert u.flags[1] & UsageFlag.GLITCH


def test_increase_above_max_rate_is_quarantined() -> None:
    """At most 10 kW → 2.5 kWh per 15 min; a jump of 49 kWh is held out, flagged."""
    u = _run([0.0, 1.0, 50.0, 51.0], MeterConfig(max_rate_per_hour=10.0))
    assert u.quantity[:3].tolist() == pytest.approx([1.0, 0.0, 1.0])
    assert u.quarantined[1] == pytest.approx(49.0)
    assert u.flags[1] & UsageFlag.OVER_MAX_RATE


def test_reset_to_large_value_is_quarantined_by_max_rate() -> None:
    """A 'reset' whose new value exceeds the physical maximum is not billed."""
    cfg = MeterConfig(max_rate_per_hour=10.0, glitch_window=0)
    u = _run([5_000.0, 5_001.0, 4_000.0, 4_001.0], cfg)
    assert u.total == pytest.approx(2.0)
    assert u.quarantined[1] == pytest.approx(4_000.0)


def test_small_decrease_within_jitter_tolerance_is_no_change() -> None:
    """100 → 100.5 → 100.495 → 101 with tolerance 0.01 and no glitch window: 0.5 + 0 + 0.505."""
    u = _run([100.0, 100.5, 100.495, 101.0], MeterConfig(jitter_tolerance=0.01, glitch_window=0))
    assert u.quantity[:3].tolist() == pytest.approx([0.5, 0.0, 0.505])
    assert u.flags[1] & UsageFlag.JITTER


def test_impossible_replacement_values_are_clamped_to_zero() -> None:
    """An old_final below the last reading would be negative usage: clamped and flagged."""
    rep = Replacement(at=T0 + 450.0, old_final=10.0, new_initial=5.0)
    u = _run([100.0, 6.0], replacements=(rep,))
    assert u.quantity[0] == 0.0
    assert u.flags[0] & UsageFlag.NEGATIVE_CLAMPED


def test_duplicate_readings_count_once() -> None:
    """A re-sent reading with the same time does not double the usage."""
    ts = np.asarray([T0, T0 + 900, T0 + 900, T0 + 1800])
    u = derive_usage("cumulative", ts, np.asarray([0.0, 1.0, 1.0, 2.0]),
                     bucket_edges(T0, T0 + 1800, "15m"))
    assert u.total == pytest.approx(2.0)


def test_conflicting_readings_at_one_time_keep_the_lowest_in_any_order() -> None:
    """Two different values at 00:15 (1.0 and 1.5): 1.0 is used whichever came first."""
    ts = np.asarray([T0, T0 + 900, T0 + 900, T0 + 1800])
    edges = bucket_edges(T0, T0 + 1800, "15m")
    a = derive_usage("cumulative", ts, np.asarray([0.0, 1.0, 1.5, 2.0]), edges)
    b = derive_usage("cumulative", ts, np.asarray([0.0, 1.5, 1.0, 2.0]), edges)
    assert a.quantity.tolist() == pytest.approx([1.0, 1.0])
    assert b.quantity.tolist() == pytest.approx([1.0, 1.0])
