"""The reading interval of a meter learned from its own readings.

A meter without a stored configuration is assumed to send a reading every 15 minutes. A meter
read hourly (or daily) would then look as if most of its readings were missing and its usage
would be flagged as estimated. Its cadence is therefore learned: the median spacing of its most
recent readings. The learned value only ever *raises* the default (a meter read every minute
keeps the 15-minute default, so short outages are not turned into gaps by a tighter rule).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from collector.usage.model import MeterConfig

__all__ = ["MIN_SPACINGS", "learned_config", "learned_interval"]

MIN_SPACINGS = 4  # fewer spacings than this: too little to learn from


def learned_interval(ts: npt.NDArray[np.float64]) -> float | None:
    """The median spacing (seconds) of the sorted reading times ``ts``; None when there are
    fewer than ``MIN_SPACINGS`` positive spacings."""
    d = np.diff(np.sort(np.asarray(ts, dtype=np.float64)))
    d = d[d > 0]
    if d.size < MIN_SPACINGS:
        return None
    return float(np.median(d))


def learned_config(ts: npt.NDArray[np.float64], default: MeterConfig | None = None) -> MeterConfig:
    """``default`` (the 15-minute configuration) with ``expected_interval_s`` raised to the
    learned interval when that is longer."""
    base = default or MeterConfig()
    learned = learned_interval(ts)
    if learned is None or learned <= base.expected_interval_s:
        return base
    return MeterConfig(
        expected_interval_s=learned,
        register_max=base.register_max,
        max_rate_per_hour=base.max_rate_per_hour,
        gap_factor=base.gap_factor,
        short_gap_s=max(base.short_gap_s, learned),
        max_gap_s=max(base.max_gap_s, learned * base.gap_factor),
        profile_weeks=base.profile_weeks,
        glitch_window=base.glitch_window,
        jitter_tolerance=base.jitter_tolerance,
    )
