"""The ambiguous counter decrease: decided by the meter's counter kind, always flagged."""

from __future__ import annotations

import numpy as np
import pytest

from collector.errors import UsageError
from collector.usage import MeterConfig, Replacement, UsageFlag, bucket_edges, derive_usage

T0 = 1_774_915_200.0  # 2026-03-31T00:00:00Z, a bucket edge
AMBIGUOUS = [100.0, 101.0, 5.0, 10.0, 110.0]  # a drop, then past the old 101 within 3 readings
# a replacement long before the readings sends the series through the general pipeline
FAR = (Replacement(at=T0 - 30 * 86_400, old_final=0.0, new_initial=0.0),)


def _run(values: list[float], config: MeterConfig, replacements: tuple[Replacement, ...] = ()):  # type: ignore[no-untyped-def]
    ts = T0 + np.arange(len(values)) * 900.0
    edges = bucket_edges(ts[0], ts[-1] + 1, "15m")
    return derive_usage(
        "cumulative", ts, np.asarray(values), edges, config=config, replacements=replacements
    )


@pytest.mark.parametrize("replacements", [(), FAR], ids=["vectorised", "general"])
def test_a_utility_register_takes_it_as_a_glitch_and_flags_it(
    replacements: tuple[Replacement, ...],
) -> None:
    """101 -> 5 -> 10 -> 110 on a register: 5 and 10 are a glitch (total 10), flagged
    AMBIGUOUS_DECREASE where the drop happened."""
    u = _run(AMBIGUOUS, MeterConfig(), replacements)
    assert u.total == pytest.approx(10.0)
    assert u.flags[2] & UsageFlag.GLITCH
    assert u.flags[2] & UsageFlag.AMBIGUOUS_DECREASE


@pytest.mark.parametrize("replacements", [(), FAR], ids=["vectorised", "general"])
def test_a_software_counter_takes_it_as_a_reset_and_flags_it(
    replacements: tuple[Replacement, ...],
) -> None:
    """The same readings on a software counter (Prometheus rule): 1 + 5 (reset) + 5 + 100 =
    111, flagged RESET and AMBIGUOUS_DECREASE."""
    u = _run(AMBIGUOUS, MeterConfig(counter_kind="software"), replacements)
    assert u.total == pytest.approx(111.0)
    assert u.flags[1] & UsageFlag.RESET
    assert np.any(u.flags & UsageFlag.AMBIGUOUS_DECREASE)
    assert not np.any(u.flags & UsageFlag.GLITCH)


@pytest.mark.parametrize("kind", ["register", "software"])
def test_a_plain_reset_is_not_ambiguous(kind: str) -> None:
    """10 -> 12 -> 1 -> 3 never comes back past 12: a reset, decided without doubt."""
    u = _run([10.0, 12.0, 1.0, 3.0], MeterConfig(counter_kind=kind))
    assert u.total == pytest.approx(5.0)
    assert not np.any(u.flags & UsageFlag.AMBIGUOUS_DECREASE)


def test_a_rise_past_the_old_value_after_the_window_is_not_ambiguous() -> None:
    """With glitch_window 1 the return on the 3rd reading is out of reach: a plain reset."""
    u = _run(AMBIGUOUS, MeterConfig(glitch_window=1))
    assert not np.any(u.flags & UsageFlag.AMBIGUOUS_DECREASE)
    assert u.flags[1] & UsageFlag.RESET


def test_an_unknown_counter_kind_is_refused() -> None:
    """Only 'register' and 'software' exist."""
    with pytest.raises(UsageError, match="counter_kind"):
        MeterConfig(counter_kind="gas")
