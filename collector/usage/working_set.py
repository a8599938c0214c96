"""How many derivation windows one refresh step loads together: a bounded working set.

A refresh pass re-derives up to thousands of series, each from the readings of its window
(the whole 15-minute buckets its dirty range touches, plus neighbours). For a meter read
every 15 minutes a window holds a handful of readings; for a logger read several times a
second it holds thousands, and a pass over thousands of such series would hold tens of
millions of readings at once. The refresh therefore loads, derives and writes the windows in
groups whose predicted size stays under ``max_readings``.

The prediction is the densest series seen so far in the pass (readings per second of span)
times each window's span: that of the buckets the window re-derives (its load range may be
unbounded, as a series' first reading has no neighbour before it). Before anything is seen,
the first group is a fixed number of windows; each later group is at most ``growth`` times
the previous one, so a dense series met late in a pass can overshoot the bound by one
group's worth at most. A single window is never split (its buckets need all of its
readings): a group always takes at least one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.errors import UsageError

__all__ = ["LoadPlanner"]

_MIN_SPAN_S = 1.0  # a span shorter than this counts as this (no division by zero)


@dataclass(slots=True)
class LoadPlanner:
    """Sizes the load groups of one pass (mutable: it learns the density as groups load)."""

    max_readings: int
    first: int = 64  # windows in the first group, before any density is known
    growth: int = 8  # a group holds at most this many times the windows of the previous one
    density: float = 0.0  # readings per second of span, the densest window seen so far
    _last: int = 0

    def __post_init__(self) -> None:
        if self.max_readings < 1 or self.first < 1 or self.growth < 1:
            raise UsageError("max_readings, first and growth must be >= 1")

    def take(self, spans: npt.NDArray[np.float64] | Sequence[float]) -> int:
        """How many of the next windows (their spans in seconds, in load order) to load
        together: at least one, when any are left."""
        n = len(spans)
        if n == 0:
            return 0
        limit = self.first if self._last == 0 else self._last * self.growth
        if self.density > 0.0:
            predicted = np.cumsum(np.maximum(np.asarray(spans, np.float64), _MIN_SPAN_S))
            predicted *= self.density
            fits = int(np.searchsorted(predicted, self.max_readings, side="right"))
            limit = min(limit, max(1, fits))
        self._last = min(n, limit)
        return self._last

    def observe(self, spans: npt.NDArray[np.float64] | Sequence[float],
                counts: Sequence[int]) -> None:
        """Learn from a loaded group: the span and reading count of each of its windows."""
        for span, count in zip(spans, counts, strict=True):
            if count > 0:
                self.density = max(self.density, count / max(float(span), _MIN_SPAN_S))
