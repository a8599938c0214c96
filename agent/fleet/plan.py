"""Which simulated device gets which meters and faults (pure, seeded)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .meters import MeterSpec


@dataclass(frozen=True, slots=True)
class DevicePlan:
    device_id: str
    meters: tuple[MeterSpec, ...]
    clock_jump_s: float = 0.0  # applied once, at ``jump_after_s`` real seconds
    jump_after_s: float = 0.0
    outage: tuple[float, float] | None = None  # (start, length) in real seconds: agent down


@dataclass(frozen=True, slots=True)
class FleetSpec:
    devices: int
    prefix: str
    meters_per_device: int = 2
    poll_s: float = 0.5  # real seconds between readings of one meter
    duration_s: float = 20.0  # real seconds of load
    seed: int = 1
    fault_share: float = 0.1  # each fault (jump, reset, rollover, outage) hits this share


def plan_fleet(spec: FleetSpec) -> list[DevicePlan]:
    rng = random.Random(spec.seed)  # noqa: S311 - simulation
    out = []
    for i in range(spec.devices):
        polls = max(int(spec.duration_s / spec.poll_s), 2)
        meters = []
        for m in range(spec.meters_per_device):
            rollover = 100_000.0 if rng.random() < spec.fault_share else None
            meters.append(MeterSpec(
                name=f"m{m}", interval_s=spec.poll_s, seed=rng.randrange(1 << 30),
                start_kwh=99_990.0 if rollover else rng.uniform(0, 50_000),
                base_kw=rng.uniform(0.1, 0.5), peak_kw=rng.uniform(1.5, 6.0),
                rollover_kwh=rollover,
                reset_at_poll=rng.randrange(2, polls + 1) if rng.random() < spec.fault_share
                else None,
            ))
        jump = rng.choice((-3600.0, -600.0, 900.0, 7200.0)) if rng.random() < spec.fault_share \
            else 0.0
        outage = None
        if rng.random() < spec.fault_share:
            start = rng.uniform(0.1, 0.5) * spec.duration_s
            outage = (start, rng.uniform(0.1, 0.3) * spec.duration_s)
        out.append(DevicePlan(
            device_id=f"{spec.prefix}-{i:05d}", meters=tuple(meters), clock_jump_s=jump,
            jump_after_s=rng.uniform(0.2, 0.8) * spec.duration_s, outage=outage,
        ))
    return out
