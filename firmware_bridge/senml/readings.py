"""SenML records → agent readings and protocol batches (for SenML sent straight over MQTT).

Naming: a record named ``<bn><n>`` becomes meter = ``bn`` (trailing separators removed) and
metric = ``n`` (a record without ``n`` is named by its unit, e.g. ``RH``, ``lon``); without a
base name the meter is the configured default and the metric the full name. Characters Tally
ids do not allow (``/``) become ``_``. A record's value ``v`` is a gauge; its sum ``s`` is a
cumulative register (named ``<metric>_sum`` if ``v`` is there too).

String, boolean and data values (``vs``/``vb``/``vd``) are not meter readings: with
``non_numeric="skip"`` (default) they are left out by decision, with ``"refuse"`` the pack is
refused naming the record. RFC 8798 secondary units are accepted: those Tally rates in
directly (``Wh``, ``kWh``, ``kW``, ``min``, ``h`` …) are kept; the others are converted to
their primary SenML unit by the registered scale (``mA`` → ``A`` × 0.001, ``kVA`` → ``VA`` ×
1000, ``km/h`` → ``m/s`` ÷ 3.6).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Final, Literal

from agent.errors import ProtocolError
from agent.protocol import (
    MAX_FUTURE_SKEW_MS,
    MAX_READINGS_PER_BATCH,
    MAX_SERIES_PER_BATCH,
    TOPIC_PREFIX,
    Batch,
    Kind,
    Reading,
    Series,
    batch_from_readings,
    series_from_readings,
)
from firmware_bridge.errors import DecodeError
from firmware_bridge.senml.records import SenmlRecord, resolve

__all__ = [
    "SECONDARY_UNITS",
    "SENML_SEQ_BASE",
    "converted",
    "senml_readings",
    "senml_seq",
    "senml_to_batch",
    "unit_of",
]

SENML_SEQ_BASE: Final = 2**62
# SenML unit symbols (RFC 8428 §12.1 and RFC 8798) that differ from Tally's
_UNITS: Final = {"Cel": "°C", "count": "1", "/": "1", "": "1"}
_BAD: Final = re.compile(r"[^A-Za-z0-9._:-]")


# RFC 8798 secondary units that Tally does not rate in directly: (primary unit, scale)
SECONDARY_UNITS: Final[dict[str, tuple[str, float]]] = {
    "ms": ("s", 0.001),
    "MHz": ("Hz", 1e6),
    "kVA": ("VA", 1e3),
    "kvar": ("var", 1e3),
    "Ah": ("C", 3600.0),
    "mV": ("V", 0.001),
    "mA": ("A", 0.001),
    "km/h": ("m/s", 1 / 3.6),
    "m/h": ("m/s", 1 / 3600),
}
NonNumeric = Literal["skip", "refuse"]


def unit_of(senml_unit: str) -> str:
    return _UNITS.get(senml_unit, senml_unit)


def converted(unit: str, value: float | None) -> tuple[str, float | None]:
    """A value in an RFC 8798 secondary unit as its primary unit (others unchanged)."""
    if unit not in SECONDARY_UNITS:
        return unit, value
    primary, scale = SECONDARY_UNITS[unit]
    return primary, None if value is None else value * scale


def _non_numeric(rec: SenmlRecord) -> str:
    if rec.text is not None:
        return "a string value (vs)"
    if rec.flag is not None:
        return "a boolean value (vb)"
    return "a data value (vd)"


def _ident(text: str, what: str) -> str:
    cleaned = _BAD.sub("_", text).lstrip("._:-")[:64]
    if not cleaned:
        raise DecodeError(f"SenML {what} {text!r:.60} leaves no usable identifier")
    return cleaned


def _split(rec: SenmlRecord, default_meter: str) -> tuple[str, str]:
    base = rec.base_name.rstrip(":/._-")
    if not base:
        return default_meter, _ident(rec.name, "name")
    rest = rec.name[len(rec.base_name) :]
    if not rest:  # a record named by its base name only: one series per unit (RFC 8428 §5.1.3)
        unit = _BAD.sub("", unit_of(rec.unit)).lstrip("._:-")
        rest = unit if unit and unit != "1" else "value"
    return _ident(base, "base name"), _ident(rest, "name")


def senml_readings(
    payload: bytes,
    now_ms: int,
    default_meter: str = "senml",
    *,
    non_numeric: NonNumeric = "skip",
) -> list[Reading]:
    """Readings of a SenML pack (JSON or CBOR); DecodeError for anything invalid."""
    out: list[Reading] = []
    for rec in resolve(payload, now_ms / 1000):
        if not rec.numeric:
            if non_numeric == "refuse":
                raise DecodeError(
                    f"record {rec.name!r:.60}: {_non_numeric(rec)} is not a meter reading"
                )
            continue
        meter, metric = _split(rec, default_meter)
        ts_ms = round(rec.time_s * 1000)
        unit, value = converted(unit_of(rec.unit), rec.value)
        _, total = converted(unit_of(rec.unit), rec.sum)
        try:
            if value is not None:
                out.append(Reading(meter, metric, unit, Kind.GAUGE, ts_ms, value))
            if total is not None:
                name = f"{metric[:60]}_sum" if value is not None else metric
                out.append(Reading(meter, name, unit, Kind.CUMULATIVE, ts_ms, total))
        except ProtocolError as exc:
            raise DecodeError(f"record {rec.name!r:.60}: {exc}") from exc
    return out


def senml_seq(payload: bytes) -> int:
    """Deterministic batch seq for a SenML payload: ``2**62 + (blake2b-64(payload) mod 2**62)``.

    Always in [2**62, 2**63): positive, fits a bigint, and above any agent's counter, so the
    collector's (device, seq) deduplication drops a redelivered payload without clashing
    with agent batches.
    """
    digest = hashlib.blake2b(payload, digest_size=8).digest()
    return SENML_SEQ_BASE + int.from_bytes(digest, "big") % SENML_SEQ_BASE


def _device_from_senml_topic(topic: str) -> str:
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_PREFIX or parts[3] != "senml":
        raise DecodeError(f"topic {topic!r:.120} is not {TOPIC_PREFIX}/<device>/senml")
    return parts[2]


def senml_to_batch(topic: str, payload: bytes, now_ms: int) -> Batch:
    """A protocol batch for a SenML pack published on ``tally/v1/<device>/senml``.

    Raises ``firmware_bridge.errors.DecodeError`` (a ValueError) with the reason when the
    topic, the pack or a record is invalid, or a limit of the wire protocol is exceeded.
    """
    device = _device_from_senml_topic(topic)
    readings = senml_readings(payload, now_ms)
    if not readings:
        raise DecodeError("SenML pack holds no numeric value or sum")
    if len(readings) > MAX_READINGS_PER_BATCH:
        raise DecodeError(f"{len(readings)} readings exceed {MAX_READINGS_PER_BATCH} per batch")
    if max(r.ts_ms for r in readings) > now_ms + MAX_FUTURE_SKEW_MS:
        raise DecodeError("a record is more than 1 day in the future")
    series = series_from_readings(readings)
    _check_series(series)
    try:
        return batch_from_readings(device, senml_seq(payload), now_ms, "senml", readings)
    except ProtocolError as exc:
        raise DecodeError(f"topic device: {exc}") from exc


def _check_series(series: Sequence[Series]) -> None:
    if len(series) > MAX_SERIES_PER_BATCH:
        raise DecodeError(f"{len(series)} series exceed {MAX_SERIES_PER_BATCH} per batch")
    keys = [(s.meter, s.metric) for s in series]
    if len(set(keys)) != len(keys):
        raise DecodeError("a name appears with two different units or kinds")
