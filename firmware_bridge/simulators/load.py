"""A deterministic simulated electrical load: power varies, energy registers only grow.

Pure: the caller passes the time (Unix seconds). Power follows a slow sine around a base
load; energy is its exact integral, so registers are consistent with the power readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LoadModel"]


@dataclass(frozen=True, slots=True)
class LoadModel:
    """Electrical quantities of a simulated meter as functions of time."""

    t0_s: float
    base_w: float = 1500.0
    swing_w: float = 800.0
    period_s: float = 600.0
    import_kwh_at_t0: float = 1234.5
    export_kwh_at_t0: float = 12.25
    export_share: float = 0.05
    phases: int = 3
    voltage_v: float = 230.0
    frequency_hz: float = 50.0

    def __post_init__(self) -> None:
        if not 0 <= self.swing_w < self.base_w:
            raise ValueError("swing_w must be below base_w so that power stays positive")
        if self.period_s <= 0 or self.phases not in (1, 3):
            raise ValueError("period_s must be > 0 and phases 1 or 3")

    def power_w(self, t_s: float) -> float:
        phase = 2 * math.pi * (t_s - self.t0_s) / self.period_s
        return self.base_w + self.swing_w * math.sin(phase)

    def _energy_since_t0_kwh(self, t_s: float) -> float:
        dt = max(0.0, t_s - self.t0_s)
        w = 2 * math.pi / self.period_s
        joules = self.base_w * dt + self.swing_w * (1 - math.cos(w * dt)) / w
        return joules / 3.6e6

    def import_kwh(self, t_s: float) -> float:
        return self.import_kwh_at_t0 + self._energy_since_t0_kwh(t_s)

    def export_kwh(self, t_s: float) -> float:
        return self.export_kwh_at_t0 + self.export_share * self._energy_since_t0_kwh(t_s)

    def values(self, t_s: float) -> dict[str, float]:
        """Every quantity by the metric names the shipped maps and telegrams use."""
        p = self.power_w(t_s)
        per_phase = p / self.phases
        ripple = math.sin(2 * math.pi * (t_s - self.t0_s) / 37.0)
        imp, exp = self.import_kwh(t_s), self.export_kwh(t_s)
        out: dict[str, float] = {
            "power": p,
            "apparent_power": p / 0.95,
            "reactive_power": p * 0.33,
            "power_factor": 0.95,
            "power_demand": self.base_w,
            "frequency": self.frequency_hz + 0.02 * ripple,
            "energy_import": imp,
            "energy_export": exp,
            "energy_total": imp + exp,
            "reactive_energy_import": imp * 0.3,
            "reactive_energy_export": exp * 0.3,
            "reactive_energy_total": (imp + exp) * 0.3,
            "voltage": self.voltage_v + ripple,
            "current": p / self.voltage_v,
        }
        for i in (1, 2, 3):
            out[f"voltage_l{i}"] = self.voltage_v + ripple + 0.1 * i
            out[f"current_l{i}"] = per_phase / self.voltage_v
            out[f"power_l{i}"] = per_phase
        return out
