"""Units of measure and exact conversion factors between them.

Every unit has a dimension and an exact decimal factor to the dimension's base unit
(energy: Wh, power: W, volume: L, data: B, time: s, count: 1). Binary data units (KiB, MiB,
GiB) have factors that are powers of two, which are still exact decimals. Conversion between two
units of the same dimension is the exact ratio of their factors, a :class:`fractions.Fraction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of measure: its symbol, dimension and exact factor to the dimension's base."""

    symbol: str
    dimension: str
    factor: Decimal


def _units() -> dict[str, Unit]:
    # fmt: off
    table: list[tuple[str, str, str]] = [
        ("Wh", "energy", "1"), ("kWh", "energy", "1000"), ("MWh", "energy", "1000000"),
        ("GWh", "energy", "1000000000"),
        ("W", "power", "1"), ("kW", "power", "1000"), ("MW", "power", "1000000"),
        ("L", "volume", "1"), ("m3", "volume", "1000"), ("m³", "volume", "1000"),
        ("B", "data", "1"), ("kB", "data", "1000"), ("MB", "data", "1000000"),
        ("GB", "data", "1000000000"), ("TB", "data", "1000000000000"),
        ("KiB", "data", "1024"), ("MiB", "data", "1048576"), ("GiB", "data", "1073741824"),
        ("s", "time", "1"), ("min", "time", "60"), ("h", "time", "3600"),
        ("unit", "count", "1"), ("event", "count", "1"), ("message", "count", "1"),
        ("request", "count", "1"), ("day", "count", "1"),
        ("amount", "money", "1"),  # transaction amounts in the plan currency (percentage)
    ]
    # fmt: on
    return {s: Unit(s, d, Decimal(f)) for s, d, f in table}


UNITS: MappingProxyType[str, Unit] = MappingProxyType(_units())

#: Power unit billed by a demand charge, for each energy unit a meter may report.
ENERGY_TO_POWER: MappingProxyType[str, str] = MappingProxyType(
    {"Wh": "W", "kWh": "kW", "MWh": "MW", "GWh": "MW"}
)


def conversion(from_unit: str, to_unit: str) -> Fraction:
    """Exact factor turning a quantity in ``from_unit`` into ``to_unit``.

    Raises ``KeyError`` for an unknown unit and ``ValueError`` for different dimensions.
    """
    src, dst = UNITS[from_unit], UNITS[to_unit]
    if src.dimension != dst.dimension:
        raise ValueError(
            f"cannot convert {from_unit} ({src.dimension}) to {to_unit} ({dst.dimension})"
        )
    return Fraction(src.factor) / Fraction(dst.factor)


def power_conversion(energy_unit: str, power_unit: str) -> Fraction:
    """Factor turning energy per hour in ``energy_unit`` into power in ``power_unit``.

    ``Wh`` per hour is ``W``, so the factor is that of ``W`` → ``power_unit`` scaled by the
    energy unit's size (e.g. Wh → kW is 1/1000).
    """
    src, dst = UNITS[energy_unit], UNITS[power_unit]
    if src.dimension != "energy" or dst.dimension != "power":
        raise ValueError(
            f"demand needs an energy meter unit and a power unit, got {energy_unit}, {power_unit}"
        )
    return Fraction(src.factor) / Fraction(dst.factor)
