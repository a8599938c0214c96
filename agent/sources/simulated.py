"""Simulated meters that behave like real ones: cumulative registers that follow a daily profile.

Each keeps its register in the ``StateStore`` (saved on every read), so it keeps counting across
agent restarts and never goes backwards, also when the clock steps back. Noise comes from a
generator seeded with (seed, meter, timestamp): a given seed gives the same readings every run.
"""

from __future__ import annotations

import abc
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.clock import to_ms
from agent.errors import ConfigError, SourceError
from agent.protocol import Kind, Reading
from agent.sources.base import StateStore
from agent.sources.profiles import data_traffic, household_load, water_use_rate

_STEP_S = 300.0  # integration step for long gaps


@dataclass(frozen=True, slots=True)
class Register:
    """A cumulative register's value at a time (what is persisted)."""

    value: float
    ts_ms: int


class _CumulativeMeter(abc.ABC):
    """Shared machinery: load state, add an increment for the elapsed time, save, report."""

    metric = ""
    unit = ""

    def __init__(
        self, name: str, interval_s: float, state: StateStore, *, seed: int, start: float,
        timezone: str, decimals: int,
    ) -> None:
        if interval_s <= 0:
            raise ConfigError(f"source {name!r}: interval_s must be > 0")
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"source {name!r}: unknown timezone {timezone!r}") from exc
        self._name = name
        self._interval_s = float(interval_s)
        self._state = state
        self._seed = seed
        self._start = start
        self._decimals = decimals
        self._register: Register | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def _key(self) -> str:
        return f"source:{self._name}"

    async def _load(self, now_ms: int) -> Register:
        if self._register is not None:
            return self._register
        raw = await self._state.load_state(self._key())
        if raw is None:
            return Register(self._start, now_ms)
        try:
            doc = json.loads(raw)
            return Register(float(doc["value"]), int(doc["ts_ms"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"corrupt saved state {raw!r:.80}", source=self._name) from exc

    def _hour(self, ts_ms: int) -> float:
        local = datetime.fromtimestamp(ts_ms / 1000, self._tz)
        return local.hour + local.minute / 60 + local.second / 3600

    def _integrate(self, start_ms: int, end_ms: int, rate: Callable[[float], float]) -> float:
        """Integral of ``rate(hour)`` (per hour) over [start, end], in steps of at most 5 min."""
        total = 0.0
        t = start_ms
        while t < end_ms:
            step = min(end_ms - t, int(_STEP_S * 1000))
            total += rate(self._hour(t + step // 2)) * step / 3_600_000
            t += step
        return total

    @abc.abstractmethod
    def _increment(self, start_ms: int, end_ms: int, rng: random.Random) -> float:
        raise NotImplementedError

    async def read(self, now: datetime) -> Sequence[Reading]:
        """Advance the register to ``now``, persist it, and return one cumulative reading."""
        now_ms = to_ms(now)
        reg = await self._load(now_ms)
        if now_ms > reg.ts_ms:
            rng = random.Random(f"{self._seed}:{self._name}:{now_ms}")  # noqa: S311 - simulation
            value = reg.value + max(0.0, self._increment(reg.ts_ms, now_ms, rng))
            reg = Register(value, now_ms)
        await self._state.save_state(
            self._key(), json.dumps({"value": reg.value, "ts_ms": reg.ts_ms})
        )
        self._register = reg
        value = math.floor(reg.value * 10**self._decimals) / 10**self._decimals
        return [Reading(self._name, self.metric, self.unit, Kind.CUMULATIVE, now_ms, value)]

    async def close(self) -> None:
        self._register = None


class SimulatedEnergyMeter(_CumulativeMeter):
    """kWh import register of a household: low at night, morning and evening peaks, noise."""

    metric = "energy_import"
    unit = "kWh"

    def __init__(
        self, name: str, interval_s: float, state: StateStore, *, seed: int = 0,
        start: float = 0.0, timezone: str = "UTC", base_kw: float = 0.3, peak_kw: float = 3.0,
    ) -> None:
        super().__init__(name, interval_s, state, seed=seed, start=start, timezone=timezone,
                         decimals=3)
        if not 0 <= base_kw <= peak_kw:
            raise ConfigError(f"source {name!r}: need 0 <= base_kw <= peak_kw")
        self._base_kw = base_kw
        self._peak_kw = peak_kw

    def power_kw(self, hour: float) -> float:
        """Mean demand (kW) at a local hour of day."""
        return self._base_kw + (self._peak_kw - self._base_kw) * household_load(hour)

    def _increment(self, start_ms: int, end_ms: int, rng: random.Random) -> float:
        return self._integrate(start_ms, end_ms, self.power_kw) * rng.uniform(0.85, 1.15)


class SimulatedWaterMeter(_CumulativeMeter):
    """m³ index of a household water meter: still most of the time, bursts of use."""

    metric = "water_volume"
    unit = "m³"

    def __init__(
        self, name: str, interval_s: float, state: StateStore, *, seed: int = 0,
        start: float = 0.0, timezone: str = "UTC", daily_m3: float = 0.3,
    ) -> None:
        super().__init__(name, interval_s, state, seed=seed, start=start, timezone=timezone,
                         decimals=4)
        if daily_m3 < 0:
            raise ConfigError(f"source {name!r}: daily_m3 must be >= 0")
        self._daily_m3 = daily_m3

    def _increment(self, start_ms: int, end_ms: int, rng: random.Random) -> float:
        # expected number of draws in the interval; ~12 draws a day of daily_m3/12 each on average
        draws_per_day = 12.0
        norm = 1.0 / (sum(water_use_rate(h + 0.5) for h in range(24)) / 24)
        expected = self._integrate(
            start_ms, end_ms, lambda h: water_use_rate(h) * norm * draws_per_day / 24
        )
        n = 0
        p = math.exp(-expected)  # Poisson draw count (Knuth; expected is small per poll)
        acc, u = p, rng.random()
        while u > acc and n < 1000:
            n += 1
            p *= expected / n
            acc += p
        mean = self._daily_m3 / draws_per_day
        return sum(rng.expovariate(1.0 / mean) for _ in range(n)) if mean > 0 else 0.0


class SimulatedDataCounter(_CumulativeMeter):
    """GB transferred by a connected device, cumulative, evening-heavy."""

    metric = "data_transferred"
    unit = "GB"

    def __init__(
        self, name: str, interval_s: float, state: StateStore, *, seed: int = 0,
        start: float = 0.0, timezone: str = "UTC", daily_gb: float = 4.0,
    ) -> None:
        super().__init__(name, interval_s, state, seed=seed, start=start, timezone=timezone,
                         decimals=6)
        if daily_gb < 0:
            raise ConfigError(f"source {name!r}: daily_gb must be >= 0")
        norm = sum(data_traffic(h + 0.5) for h in range(24))
        self._gb_per_unit = daily_gb / norm

    def _increment(self, start_ms: int, end_ms: int, rng: random.Random) -> float:
        rate = self._integrate(start_ms, end_ms, data_traffic) * self._gb_per_unit
        return rate * rng.lognormvariate(0.0, 0.3)
