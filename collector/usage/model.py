"""Value objects of the usage engine: meter configuration, replacements, flags and results.

Times inside the usage core are Unix seconds (UTC): ``float64`` for reading times, ``int64``
for bucket starts. Quantities are in the series' unit (cumulative/delta) or unit·hours (gauges).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from collector.errors import UsageError

__all__ = [
    "BUCKET_15M_S",
    "BucketUsage",
    "MeterConfig",
    "Replacement",
    "Resolution",
    "SeriesKind",
    "UsageFlag",
    "UsageMatrix",
]

BUCKET_15M_S: Final = 900

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class SeriesKind(enum.StrEnum):
    """How a series' values relate to consumption (same names as the wire protocol)."""

    CUMULATIVE = "cumulative"
    DELTA = "delta"
    GAUGE = "gauge"


class Resolution(enum.StrEnum):
    """Bucket sizes. 15m/1h are fixed lengths; 1d/1mo follow local midnights of a time zone."""

    M15 = "15m"
    H1 = "1h"
    D1 = "1d"
    MO1 = "1mo"


class UsageFlag(enum.IntFlag):
    """Bits of ``usage_15m.flags``: what happened inside a bucket. Stored as an int."""

    NONE = 0
    RESET = 1  # the counter went down and was taken as restarted at 0 (increase = new value)
    ROLLOVER = 2  # the register wrapped at its configured register_max
    REPLACEMENT = 4  # a meter replacement event lies in the bucket (continuity kept)
    GLITCH = 8  # one or more readings were ignored as transient outliers
    OVER_MAX_RATE = 16  # an increase above the physical maximum was quarantined (not billed)
    GAP = 32  # readings were missing for longer than gap_factor × expected interval
    ESTIMATED_INTERPOLATED = 64  # part of the quantity is a short-gap linear estimate
    ESTIMATED_PROFILE = 128  # part of the quantity is a long-gap historical-profile estimate
    JITTER = 256  # a decrease within jitter_tolerance was taken as no change
    NEGATIVE_CLAMPED = 512  # an impossible negative increase (bad replacement data) was set to 0
    GAP_TOO_LONG = 1024  # a gap longer than max_gap_s: not estimated; its increase quarantined
    # a drop followed within glitch_window readings by a rise past the pre-drop value: a
    # glitch or a reset, decided by the meter's counter_kind; to be reviewed by staff
    AMBIGUOUS_DECREASE = 2048


COUNTER_KINDS = ("register", "software")


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """How to read one series. Defaults suit a 15-minute smart meter.

    ``register_max``: the register's wrap value (modulus): after it, the register reads
    ``value − register_max``. A 6-digit mechanical register showing up to 99,999.9 kWh has
    ``register_max = 100000``; a 32-bit pulse counter at 0.001 kWh/pulse has ``2**32 * 0.001``.
    ``max_rate_per_hour``: the physical maximum increase per hour (rated power, in the series'
    unit per hour); larger increases are quarantined. ``gap_factor``: a gap is a spacing of more
    than ``gap_factor × expected_interval_s``. ``short_gap_s``: gaps up to this are interpolated
    linearly, longer ones are estimated from a ``profile_weeks`` same-hour profile; gaps longer
    than ``max_gap_s`` (a wrong clock, a meter offline for months) are not estimated at all.
    ``glitch_window``: a decrease followed within this many readings by a return to the
    pre-drop level is a glitch. ``jitter_tolerance``: decreases this small are noise.
    """

    expected_interval_s: float = 900.0
    register_max: float | None = None
    max_rate_per_hour: float | None = None
    gap_factor: float = 2.5
    short_gap_s: float = 3600.0
    max_gap_s: float = 31 * 86400.0
    profile_weeks: int = 3
    glitch_window: int = 3
    jitter_tolerance: float = 0.0
    counter_kind: str = "register"

    @property
    def decision_window(self) -> int:
        """Readings within which a drop that comes back is a glitch: ``glitch_window`` for a
        utility ``register`` (it never resets by itself), 0 for a ``software`` counter
        (every decrease is a reset, as Prometheus counts it)."""
        return 0 if self.counter_kind == "software" else self.glitch_window

    def __post_init__(self) -> None:
        if not (self.expected_interval_s > 0 and math.isfinite(self.expected_interval_s)):
            raise UsageError(f"expected_interval_s must be > 0, got {self.expected_interval_s}")
        if self.register_max is not None and not self.register_max > 0:
            raise UsageError(f"register_max must be > 0, got {self.register_max}")
        if self.max_rate_per_hour is not None and not self.max_rate_per_hour > 0:
            raise UsageError(f"max_rate_per_hour must be > 0, got {self.max_rate_per_hour}")
        if not self.gap_factor >= 1:
            raise UsageError(f"gap_factor must be >= 1, got {self.gap_factor}")
        if self.short_gap_s < 0 or self.profile_weeks < 0 or self.glitch_window < 0:
            raise UsageError("short_gap_s, profile_weeks and glitch_window must be >= 0")
        if not self.max_gap_s > 0:
            raise UsageError(f"max_gap_s must be > 0, got {self.max_gap_s}")
        if self.jitter_tolerance < 0:
            raise UsageError(f"jitter_tolerance must be >= 0, got {self.jitter_tolerance}")
        if self.counter_kind not in COUNTER_KINDS:
            raise UsageError(
                f"counter_kind must be one of {', '.join(COUNTER_KINDS)}, got {self.counter_kind!r}"
            )

    @property
    def gap_threshold_s(self) -> float:
        """Spacing of two readings above which the time between them is a gap."""
        return self.gap_factor * self.expected_interval_s


@dataclass(frozen=True, slots=True)
class Replacement:
    """A meter swap at ``at`` (Unix s): the old meter's last and the new meter's first register."""

    at: float
    old_final: float
    new_initial: float


@dataclass(frozen=True, slots=True)
class BucketUsage:
    """Usage of one series per bucket (arrays of equal length, bucket ``i`` is
    ``[starts[i], starts[i+1])``; ``ends[-1]`` closes the last one).

    ``quantity`` is the billable usage (actual + estimated, quarantined excluded);
    ``estimated`` the part of ``quantity`` that VEE estimated; ``quarantined`` increases held
    out for exceeding the physical maximum; ``coverage`` the fraction of the bucket covered by
    known or estimated intervals (0 = nothing known); ``peak`` the highest gauge reading (NaN
    for counters or when no reading falls in the bucket).
    """

    starts: I64
    ends: I64
    quantity: F64
    estimated: F64
    quarantined: F64
    coverage: F64
    reading_count: I64
    flags: I64
    peak: F64

    @property
    def total(self) -> float:
        return float(self.quantity.sum())

    @property
    def total_estimated(self) -> float:
        return float(self.estimated.sum())


@dataclass(frozen=True, slots=True)
class UsageMatrix:
    """Interval usage of many series on a common bucket grid (what billing reads).

    ``quantity[i, j]`` is the usage of ``series_ids[i]`` in ``[starts[j], ends[j])``;
    ``estimated`` (its estimated part) and ``reading_count`` have the same shape. Missing
    rows/buckets are 0.
    """

    series_ids: I64
    starts: I64
    ends: I64
    quantity: F64
    estimated: F64
    reading_count: I64
