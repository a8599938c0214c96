"""Pure IEC 62056-21 decoding: the STX…ETX BCC data block and its OBIS data lines.

A mode C readout data block is ``STX`` data lines ``!`` CR LF ``ETX`` BCC, where BCC is
the XOR of every byte after STX up to and including ETX. Each data line holds data sets
``address(value*unit)``, e.g. ``1-0:1.8.0(012345.678*kWh)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from agent.protocol import Kind
from firmware_bridge.errors import DecodeError, FrameError
from firmware_bridge.measurement import Measurement

__all__ = [
    "BAUD_RATES",
    "DEFAULT_OBIS",
    "ETX",
    "STX",
    "DataSet",
    "ObisPoint",
    "bcc",
    "parse_data_block",
    "parse_identification",
    "to_measurements",
]

STX: Final = 0x02
ETX: Final = 0x03
# mode C baud rate identification character → baud rate
BAUD_RATES: Final = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200}
_DATASET: Final = re.compile(r"([0-9A-Za-z.:*&-]{1,16})\(([^()]{0,32})\)")
_VALUE: Final = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?)\s*(?:\*\s*([A-Za-z0-9/%³²]{1,16}))?\s*$")
_IDENT: Final = re.compile(r"^/([A-Za-z]{2}[A-Za-z0-9])([0-9A-Z])(\\\w)?([ -~]{1,16})$")


@dataclass(frozen=True, slots=True)
class DataSet:
    """One ``address(value*unit)`` data set."""

    address: str
    value: str
    unit: str


@dataclass(frozen=True, slots=True)
class ObisPoint:
    metric: str
    kind: Kind


# OBIS value groups C.D.E → metric. Energy registers are cumulative, the rest gauges.
DEFAULT_OBIS: Final[dict[str, ObisPoint]] = {
    "1.8.0": ObisPoint("energy_import", Kind.CUMULATIVE),
    "1.8.1": ObisPoint("energy_import_t1", Kind.CUMULATIVE),
    "1.8.2": ObisPoint("energy_import_t2", Kind.CUMULATIVE),
    "1.8.3": ObisPoint("energy_import_t3", Kind.CUMULATIVE),
    "1.8.4": ObisPoint("energy_import_t4", Kind.CUMULATIVE),
    "2.8.0": ObisPoint("energy_export", Kind.CUMULATIVE),
    "2.8.1": ObisPoint("energy_export_t1", Kind.CUMULATIVE),
    "2.8.2": ObisPoint("energy_export_t2", Kind.CUMULATIVE),
    "3.8.0": ObisPoint("reactive_energy_import", Kind.CUMULATIVE),
    "4.8.0": ObisPoint("reactive_energy_export", Kind.CUMULATIVE),
    "1.7.0": ObisPoint("power_import", Kind.GAUGE),
    "2.7.0": ObisPoint("power_export", Kind.GAUGE),
    "16.7.0": ObisPoint("power", Kind.GAUGE),
    "32.7.0": ObisPoint("voltage_l1", Kind.GAUGE),
    "52.7.0": ObisPoint("voltage_l2", Kind.GAUGE),
    "72.7.0": ObisPoint("voltage_l3", Kind.GAUGE),
    "31.7.0": ObisPoint("current_l1", Kind.GAUGE),
    "51.7.0": ObisPoint("current_l2", Kind.GAUGE),
    "71.7.0": ObisPoint("current_l3", Kind.GAUGE),
    "14.7.0": ObisPoint("frequency", Kind.GAUGE),
}


def bcc(data: bytes) -> int:
    """Block check character: XOR of ``data`` (the bytes after STX through ETX)."""
    out = 0
    for b in data:
        out ^= b
    return out


def parse_identification(line: bytes) -> tuple[str, int, str]:
    """``/ISK5MT174-0001`` → (manufacturer, max baud rate, identification); DecodeError if not."""
    try:
        text = line.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DecodeError("identification is not ASCII", data=line, offset=exc.start) from exc
    m = _IDENT.match(text)
    if m is None or m.group(2) not in BAUD_RATES:
        raise DecodeError(f"not a mode C identification message: {text!r:.60}", data=line)
    return m.group(1), BAUD_RATES[m.group(2)], m.group(4)


def parse_data_block(frame: bytes) -> list[DataSet]:
    """Data sets of a complete ``STX … ! CR LF ETX BCC`` block; FrameError on a bad frame."""
    if len(frame) < 3 or frame[0] != STX:
        raise FrameError("data block must start with STX", data=frame, offset=0)
    if frame[-2] != ETX:
        raise FrameError("data block must end with ETX and BCC", data=frame, offset=len(frame) - 2)
    expected = bcc(frame[1:-1])
    if frame[-1] != expected:
        raise FrameError(
            f"BCC mismatch: frame says 0x{frame[-1]:02x}, computed 0x{expected:02x}",
            data=frame,
            offset=len(frame) - 1,
        )
    body = frame[1:-2]
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FrameError("data block is not ASCII", data=frame, offset=exc.start + 1) from exc
    if not text.rstrip("\r\n").endswith("!"):
        raise FrameError("data block lacks the end mark '!'", data=frame)
    out: list[DataSet] = []
    for line in text.split("\r\n"):
        if line in ("", "!"):
            continue
        for m in _DATASET.finditer(line):
            value, _, unit = m.group(2).partition("*")
            out.append(DataSet(m.group(1), value, unit))
    return out


def _obis_key(address: str) -> str | None:
    """The C.D.E groups of an OBIS address (``1-0:1.8.0*255`` and ``1.8.0`` → ``1.8.0``)."""
    core = address.split(":", 1)[-1].split("*", 1)[0].split("&", 1)[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return ".".join(str(int(p)) for p in parts)


def to_measurements(
    datasets: list[DataSet], ts_ms: int, obis: dict[str, ObisPoint] | None = None
) -> list[Measurement]:
    """Measurements for the data sets whose OBIS code is mapped (others are ignored)."""
    table = DEFAULT_OBIS if obis is None else obis
    out: list[Measurement] = []
    seen: set[str] = set()
    for ds in datasets:
        key = _obis_key(ds.address)
        point = table.get(key) if key else None
        if point is None or point.metric in seen:
            continue
        m = _VALUE.match(f"{ds.value}*{ds.unit}" if ds.unit else ds.value)
        if m is None:
            raise DecodeError(f"{ds.address}: value {ds.value!r:.40} is not a number")
        try:
            value = float(Decimal(m.group(1)))
        except InvalidOperation as exc:
            raise DecodeError(f"{ds.address}: bad number {ds.value!r:.40}") from exc
        seen.add(point.metric)
        out.append(Measurement(point.metric, m.group(2) or "1", point.kind, ts_ms, value))
    return out
