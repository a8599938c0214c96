"""Pure daily usage profiles for the simulated meters (no clock, no I/O)."""

from __future__ import annotations

import math


def _bump(hour: float, centre: float, width: float) -> float:
    d = min(abs(hour - centre), 24.0 - abs(hour - centre))  # distance on the 24 h circle
    return math.exp(-0.5 * (d / width) ** 2)


def household_load(hour: float) -> float:
    """Relative household electricity demand at ``hour`` (0-24): ~0.25 at night, 1.0 at peaks.

    A morning peak around 07:30 and a larger evening peak around 19:00 over a daytime plateau.
    """
    night = 0.25
    day = 0.2 * _bump(hour, 13.0, 3.5)
    return min(1.0, night + day + 0.55 * _bump(hour, 7.5, 1.0) + 0.75 * _bump(hour, 19.0, 1.6))


def water_use_rate(hour: float) -> float:
    """Relative chance of a water draw starting at ``hour``: showers mornings, cooking evenings."""
    return 0.02 + 0.9 * _bump(hour, 7.0, 0.8) + 0.5 * _bump(hour, 19.5, 1.2) + 0.15 * _bump(
        hour, 12.5, 1.0
    )


def data_traffic(hour: float) -> float:
    """Relative network traffic at ``hour``: quiet overnight, highest in the evening."""
    return 0.1 + 0.3 * _bump(hour, 11.0, 3.0) + 0.9 * _bump(hour, 21.0, 2.0)
