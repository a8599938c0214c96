"""Decode one P1 telegram into measurements with ``dsmr-parser`` (CRC checked).

Electricity registers are stamped with the time the telegram was received; the gas register
carries its own capture time (the M-Bus value is read by the gas meter, typically every 5
minutes or hourly, so it is older than the telegram).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from dsmr_parser import telegram_specifications
from dsmr_parser.exceptions import InvalidChecksumError, ParseError
from dsmr_parser.parsers import TelegramParser

from agent.protocol import MIN_TIMESTAMP_MS, Kind
from firmware_bridge.errors import FrameError
from firmware_bridge.measurement import Measurement

__all__ = ["DsmrSpec", "decode_telegram"]


class DsmrSpec(enum.StrEnum):
    V2_2 = "v2.2"  # no CRC
    V3 = "v3"  # no CRC
    V4 = "v4"
    V5 = "v5"
    BELGIUM = "belgium"

    def specification(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            DsmrSpec.V2_2: telegram_specifications.V2_2,
            DsmrSpec.V3: telegram_specifications.V3,
            DsmrSpec.V4: telegram_specifications.V4,
            DsmrSpec.V5: telegram_specifications.V5,
            DsmrSpec.BELGIUM: telegram_specifications.BELGIUM_FLUVIUS,
        }[self]
        return spec


@dataclass(frozen=True, slots=True)
class _Field:
    metric: str
    unit: str
    kind: Kind
    factor: float = 1.0


# dsmr-parser value names → Tally metrics
_ELECTRICITY: Final[dict[str, _Field]] = {
    "ELECTRICITY_USED_TARIFF_1": _Field("energy_import_t1", "kWh", Kind.CUMULATIVE),  # 1-0:1.8.1
    "ELECTRICITY_USED_TARIFF_2": _Field("energy_import_t2", "kWh", Kind.CUMULATIVE),  # 1-0:1.8.2
    "ELECTRICITY_DELIVERED_TARIFF_1": _Field("energy_export_t1", "kWh", Kind.CUMULATIVE),  # 2.8.1
    "ELECTRICITY_DELIVERED_TARIFF_2": _Field("energy_export_t2", "kWh", Kind.CUMULATIVE),  # 2.8.2
    "CURRENT_ELECTRICITY_USAGE": _Field("power_import", "W", Kind.GAUGE, 1000.0),  # 1-0:1.7.0 kW
    "CURRENT_ELECTRICITY_DELIVERY": _Field("power_export", "W", Kind.GAUGE, 1000.0),  # 2.7.0 kW
}
# M-Bus device types (EN 13757-3) carried on P1 channels 0-n:24.2.x
_MBUS_METRICS: Final = {3: "gas", 7: "water", 4: "heat"}
_MBUS_READINGS: Final = (
    "MBUS_METER_READING",  # DSMR 5: 0-n:24.2.1 on any channel
    "HOURLY_GAS_METER_READING",  # DSMR 4
    "GAS_METER_READING",  # DSMR 2.2 / 3 (value on the line after 0-n:24.3.0)
    "BELGIUM_5MIN_GAS_METER_READING",  # e-MUCS (Fluvius)
)
_LIBRARY_ERRORS: Final = (
    ParseError,
    InvalidChecksumError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    ArithmeticError,
    InvalidOperation,
    RuntimeError,
)


@functools.cache
def _parser(spec: DsmrSpec) -> TelegramParser:
    """dsmr-parser compiles one regex per OBIS object: build each parser once (immutable)."""
    return TelegramParser(spec.specification())


def _number(obj: Any) -> float | None:
    value = getattr(obj, "value", None)
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _mbus_measurements(telegram: Any, raw: bytes) -> list[Measurement]:
    """One cumulative measurement per M-Bus meter (gas, water, heat), at its own capture time."""
    out: list[Measurement] = []
    devices = getattr(telegram, "MBUS_DEVICES", None) or []
    for device in devices:
        dtype = _number(getattr(device, "MBUS_DEVICE_TYPE", None))
        metric = _MBUS_METRICS.get(int(dtype)) if dtype is not None else "gas"
        reading = next(
            (getattr(device, n) for n in _MBUS_READINGS if getattr(device, n, None) is not None),
            None,
        )
        value = _number(reading)
        if metric is None or value is None:
            continue
        captured = getattr(reading, "datetime", None)
        if not isinstance(captured, datetime) or captured.tzinfo is None:
            raise FrameError(f"{metric} reading has no capture time", data=raw)
        ts_ms = int(captured.timestamp() * 1000)
        if ts_ms < MIN_TIMESTAMP_MS:
            raise FrameError(f"{metric} capture time {captured} is before 2000", data=raw)
        unit = str(getattr(reading, "unit", "") or "m3")
        unit = "m3" if unit.lower() in ("m3", "m³") else unit
        if metric in {m.metric for m in out}:  # a second gas/water meter on another channel
            metric = f"{metric}_{device.channel_id}"
        out.append(Measurement(metric, unit, Kind.CUMULATIVE, ts_ms, value))
    return out


def decode_telegram(
    raw: bytes, received_ms: int, spec: DsmrSpec = DsmrSpec.V5
) -> list[Measurement]:
    """Measurements of one complete telegram (``/`` … ``!CRC\\r\\n``); FrameError if invalid."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FrameError(
            f"telegram is not ASCII: {exc.reason}", data=raw, offset=exc.start
        ) from exc
    if not text.startswith("/") or "!" not in text:
        raise FrameError("not a telegram: must start with '/' and contain '!'", data=raw, offset=0)
    try:
        telegram = _parser(spec).parse(text, throw_ex=True)
    except InvalidChecksumError as exc:
        raise FrameError(f"CRC mismatch: {exc}", data=raw, offset=text.rfind("!")) from exc
    except _LIBRARY_ERRORS as exc:
        raise FrameError(f"telegram does not parse: {exc}", data=raw) from exc
    out: list[Measurement] = []
    for name, field in _ELECTRICITY.items():
        value = _number(getattr(telegram, name, None))
        if value is not None:
            out.append(
                Measurement(field.metric, field.unit, field.kind, received_ms, value * field.factor)
            )
    out.extend(_mbus_measurements(telegram, raw))
    if not out:
        raise FrameError("telegram holds no energy, power or gas register", data=raw)
    return out
