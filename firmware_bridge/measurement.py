"""The value a pure decoder produces, before the agent's meter name is attached."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from agent.errors import ProtocolError
from agent.protocol import Kind, Reading
from firmware_bridge.errors import DecodeError

__all__ = ["Measurement", "to_readings"]


@dataclass(frozen=True, slots=True)
class Measurement:
    """One decoded value of a metric at an instant (Unix ms)."""

    metric: str
    unit: str
    kind: Kind
    ts_ms: int
    value: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise DecodeError(f"{self.metric}: value {self.value!r} is not finite")


def to_readings(meter: str, measurements: Iterable[Measurement]) -> list[Reading]:
    """Attach the meter name; a value the wire protocol rejects becomes a DecodeError."""
    out: list[Reading] = []
    for m in measurements:
        try:
            out.append(Reading(meter, m.metric, m.unit, m.kind, m.ts_ms, m.value))
        except ProtocolError as exc:
            raise DecodeError(f"{m.metric}: {exc}") from exc
    return out
