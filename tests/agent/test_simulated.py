"""Simulated meters: cumulative, persistent across restarts, deterministic, shaped like a day."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.buffer_fake import MemoryBuffer
from agent.errors import ConfigError
from agent.protocol import Kind
from agent.sources.profiles import household_load
from agent.sources.simulated import (
    SimulatedDataCounter,
    SimulatedEnergyMeter,
    SimulatedWaterMeter,
)

DAY0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
METERS = [SimulatedEnergyMeter, SimulatedWaterMeter, SimulatedDataCounter]


async def run(meter: object, start: datetime, step_s: float, n: int) -> list[float]:
    out = []
    for i in range(n):
        [r] = await meter.read(start + timedelta(seconds=step_s * i))  # type: ignore[attr-defined]
        out.append(r.value)
    return out


@pytest.mark.parametrize("cls", METERS)
async def test_register_never_decreases_over_two_days(cls: type) -> None:
    """Every simulated register is monotone over 48 h of 15-minute polls."""
    values = await run(cls("m", 900, MemoryBuffer(), seed=3), DAY0, 900, 192)
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert values[-1] > values[0]


@pytest.mark.parametrize("cls", METERS)
async def test_register_resumes_after_restart(cls: type) -> None:
    """A restarted meter continues exactly as one that never stopped."""
    store = MemoryBuffer()
    first = await run(cls("m", 60, store, seed=1), DAY0, 3600, 10)
    resumed = await run(cls("m", 60, store, seed=1), DAY0 + timedelta(hours=10), 3600, 14)
    straight = await run(cls("m", 60, MemoryBuffer(), seed=1), DAY0, 3600, 24)
    assert first + resumed == straight
    assert straight[-1] > straight[0]


@pytest.mark.parametrize("cls", METERS)
async def test_clock_stepping_back_does_not_decrease(cls: type) -> None:
    """A poll with an earlier time than the last one reports the register unchanged."""
    meter = cls("m", 60, MemoryBuffer(), seed=2)
    [a] = await meter.read(DAY0 + timedelta(hours=9))
    [b] = await meter.read(DAY0 + timedelta(hours=5))
    assert b.value == a.value


@pytest.mark.parametrize("cls", METERS)
async def test_same_seed_same_readings(cls: type) -> None:
    """Two meters with the same seed and times give identical readings; another seed differs."""
    a = await run(cls("m", 60, MemoryBuffer(), seed=7), DAY0, 1800, 48)
    b = await run(cls("m", 60, MemoryBuffer(), seed=7), DAY0, 1800, 48)
    c = await run(cls("m", 60, MemoryBuffer(), seed=8), DAY0, 1800, 48)
    assert a == b
    assert a != c


async def test_energy_reading_shape() -> None:
    """The energy meter reports one cumulative kWh reading named after the source."""
    [r] = await SimulatedEnergyMeter("house-1", 60, MemoryBuffer()).read(DAY0)
    assert (r.meter, r.metric, r.unit, r.kind) == ("house-1", "energy_import", "kWh",
                                                   Kind.CUMULATIVE)


async def test_energy_follows_daily_profile() -> None:
    """An evening hour uses several times the energy of a night hour."""
    meter = SimulatedEnergyMeter("m", 60, MemoryBuffer(), seed=4, base_kw=0.3, peak_kw=3.0)
    values = await run(meter, DAY0, 3600, 25)
    per_hour = [b - a for a, b in itertools.pairwise(values)]
    night = per_hour[2] + per_hour[3]  # 02:00-04:00
    evening = per_hour[18] + per_hour[19]  # 18:00-20:00
    assert evening > 3 * night


async def test_energy_daily_total_is_plausible() -> None:
    """A day's consumption lies between the base and the peak power times 24 h."""
    values = await run(SimulatedEnergyMeter("m", 60, MemoryBuffer(), seed=5), DAY0, 300, 289)
    assert 0.3 * 24 < values[-1] - values[0] < 3.0 * 24


async def test_water_comes_in_bursts() -> None:
    """Most one-minute water intervals show no use, some do."""
    values = await run(SimulatedWaterMeter("w", 60, MemoryBuffer(), seed=6), DAY0, 60, 24 * 60)
    steps = [b - a for a, b in itertools.pairwise(values)]
    still = sum(1 for s in steps if s == 0)
    assert still > 0.8 * len(steps)
    assert still < len(steps)


async def test_long_gap_integrates_whole_gap() -> None:
    """After a 2-day outage the data counter shows roughly two days of traffic."""
    meter = SimulatedDataCounter("d", 60, MemoryBuffer(), seed=1, daily_gb=4.0)
    [a] = await meter.read(DAY0)
    [b] = await meter.read(DAY0 + timedelta(days=2))
    assert 4.0 < b.value - a.value < 16.0


async def test_bad_timezone_is_config_error() -> None:
    """An unknown timezone option is reported as a configuration error naming the source."""
    with pytest.raises(ConfigError, match="'m'"):
        SimulatedEnergyMeter("m", 60, MemoryBuffer(), timezone="Mars/Olympus")


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=24, allow_nan=False))
def test_household_load_is_bounded(hour: float) -> None:
    """The relative load stays within [0.25, 1] at every hour."""
    assert 0.25 <= household_load(hour) <= 1.0
