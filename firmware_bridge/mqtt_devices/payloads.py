"""Pure decoders of Shelly and Tasmota energy messages: (topic, payload, time) → measurements.

Shelly Gen2+ (``<id>/status/switch:<n>``, JSON): ``aenergy.total`` is a Wh register,
``apower`` W, ``voltage`` V, ``current`` A. Shelly Gen1 (``shellies/<id>/relay/<n>/energy``)
publishes a plain integer in **watt-minutes** (converted here to Wh) and ``…/power`` in W.
Tasmota (``tele/<topic>/SENSOR``, JSON) has ``ENERGY.Total`` (kWh register), ``Today`` (kWh
since midnight, reset daily: reported as a gauge), ``Power`` W, ``Voltage``, ``Current``,
``Factor``; multi-channel devices send arrays, reported per channel (``power_1``, …).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

from agent.protocol import Kind
from firmware_bridge.errors import DecodeError
from firmware_bridge.measurement import Measurement

__all__ = ["decode_shelly_gen1", "decode_shelly_gen2", "decode_tasmota_sensor"]

_MAX_PAYLOAD: Final = 65_536


def _json_object(payload: bytes) -> Mapping[str, Any]:
    if len(payload) > _MAX_PAYLOAD:
        raise DecodeError(f"payload of {len(payload)} bytes is too large")
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"not JSON: {exc}", data=payload) from exc
    if not isinstance(doc, dict):
        raise DecodeError("payload must be a JSON object", data=payload)
    return doc


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"{where} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise DecodeError(f"{where} must be finite")
    return number


def decode_shelly_gen2(payload: bytes, ts_ms: int) -> list[Measurement]:
    """A ``status/switch:<n>`` (or ``pm1:<n>``) notification of a Shelly Gen2+ device."""
    doc = _json_object(payload)
    out: list[Measurement] = []
    aenergy = doc.get("aenergy")
    if aenergy is not None:
        if not isinstance(aenergy, dict):
            raise DecodeError("aenergy must be an object")
        total = _number(aenergy.get("total"), "aenergy.total")
        if total is not None:
            out.append(Measurement("energy", "Wh", Kind.CUMULATIVE, ts_ms, total))
    ret = doc.get("ret_aenergy")
    ret_total = _number(ret.get("total"), "ret_aenergy.total") if isinstance(ret, dict) else None
    if ret_total is not None:
        out.append(Measurement("energy_returned", "Wh", Kind.CUMULATIVE, ts_ms, ret_total))
    for key, metric, unit in (
        ("apower", "power", "W"),
        ("voltage", "voltage", "V"),
        ("current", "current", "A"),
        ("pf", "power_factor", "1"),
    ):
        value = _number(doc.get(key), key)
        if value is not None:
            out.append(Measurement(metric, unit, Kind.GAUGE, ts_ms, value))
    return out


def decode_shelly_gen1(kind: str, payload: bytes, ts_ms: int) -> list[Measurement]:
    """A Gen1 ``relay/<n>/energy`` (watt-minutes → Wh) or ``relay/<n>/power`` (W) message."""
    try:
        raw = float(payload.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"Shelly Gen1 {kind} is not a number", data=payload) from exc
    number = _number(raw, kind)
    assert number is not None
    if kind == "energy":
        return [Measurement("energy", "Wh", Kind.CUMULATIVE, ts_ms, number / 60.0)]
    if kind == "power":
        return [Measurement("power", "W", Kind.GAUGE, ts_ms, number)]
    raise DecodeError(f"unknown Shelly Gen1 message kind {kind!r:.20}")


_TASMOTA: Final = (
    ("Total", "energy", "kWh", Kind.CUMULATIVE),
    ("Today", "energy_today", "kWh", Kind.GAUGE),
    ("Power", "power", "W", Kind.GAUGE),
    ("ApparentPower", "apparent_power", "VA", Kind.GAUGE),
    ("ReactivePower", "reactive_power", "VAr", Kind.GAUGE),
    ("Factor", "power_factor", "1", Kind.GAUGE),
    ("Voltage", "voltage", "V", Kind.GAUGE),
    ("Current", "current", "A", Kind.GAUGE),
)


def decode_tasmota_sensor(payload: bytes, ts_ms: int) -> list[Measurement]:
    """A ``tele/<topic>/SENSOR`` message; messages without an ``ENERGY`` object give nothing."""
    doc = _json_object(payload)
    energy = doc.get("ENERGY")
    if energy is None:
        return []
    if not isinstance(energy, dict):
        raise DecodeError("ENERGY must be an object")
    out: list[Measurement] = []
    for key, metric, unit, kind in _TASMOTA:
        value = energy.get(key)
        if isinstance(value, list):
            for i, item in enumerate(value, start=1):
                number = _number(item, f"ENERGY.{key}[{i}]")
                if number is not None:
                    out.append(Measurement(f"{metric}_{i}", unit, kind, ts_ms, number))
            continue
        number = _number(value, f"ENERGY.{key}")
        if number is not None:
            out.append(Measurement(metric, unit, kind, ts_ms, number))
    return out
