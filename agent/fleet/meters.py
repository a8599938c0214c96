"""A household energy meter for the fleet: daily and seasonal profile, noise, reset, rollover."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.clock import to_ms
from agent.protocol import Kind, Reading
from agent.sources.profiles import household_load


@dataclass(frozen=True, slots=True)
class MeterSpec:
    name: str
    interval_s: float  # real seconds between polls
    seed: int
    start_kwh: float = 0.0
    base_kw: float = 0.3
    peak_kw: float = 3.0
    rollover_kwh: float | None = None  # the register wraps to 0 here (e.g. 99 999.999)
    reset_at_poll: int | None = None  # the register restarts from 0 at this poll (a reset)


def seasonal_factor(moment: datetime) -> float:
    """More use in winter (northern hemisphere): 1.35 mid-January, 0.65 mid-July."""
    day = moment.timetuple().tm_yday
    return 1.0 + 0.35 * math.cos(2 * math.pi * (day - 15) / 365.25)


class FleetMeter:
    """Implements ``agent.sources.base.Source``; keeps its register in memory, so it keeps
    counting while its agent is down (the next reading covers the outage)."""

    def __init__(self, spec: MeterSpec) -> None:
        self.spec = spec
        self._value = spec.start_kwh
        self._last_ms: int | None = None
        self._polls = 0
        self._rng = random.Random(spec.seed)  # noqa: S311 - simulation

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def interval_s(self) -> float:
        return self.spec.interval_s

    def advance(self, now: datetime) -> float:
        """Move the register to ``now`` (pure but for the meter's own state); its value."""
        now_ms = to_ms(now)
        if self._last_ms is not None and now_ms > self._last_ms:
            hours = (now_ms - self._last_ms) / 3_600_000
            mid = datetime.fromtimestamp((now_ms + self._last_ms) / 2000, UTC)
            hour = mid.hour + mid.minute / 60
            kw = (self.spec.base_kw + (self.spec.peak_kw - self.spec.base_kw)
                  * household_load(hour)) * seasonal_factor(mid)
            self._value += kw * hours * self._rng.uniform(0.85, 1.15)
        if self._last_ms is None or now_ms > self._last_ms:
            self._last_ms = now_ms
        self._polls += 1
        if self.spec.reset_at_poll is not None and self._polls == self.spec.reset_at_poll:
            self._value = 0.0
        if self.spec.rollover_kwh is not None and self._value >= self.spec.rollover_kwh:
            self._value -= self.spec.rollover_kwh
        return math.floor(self._value * 1000) / 1000

    async def read(self, now: datetime) -> Sequence[Reading]:
        value = self.advance(now)
        return [Reading(self.spec.name, "energy_import", "kWh", Kind.CUMULATIVE, to_ms(now),
                        value)]

    async def close(self) -> None:
        return None
