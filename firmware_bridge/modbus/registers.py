"""Pure Modbus register decoding: words in, measurements out (no I/O, no clock).

A register map lists points; each point names the function code (3 holding, 4 input), the
first register address (0-based, as on the wire), the data type, the word order and a
scale. ``plan_blocks`` groups points into few contiguous reads; ``decode_block`` turns the
words of one read into measurements.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from agent.protocol import Kind
from firmware_bridge.errors import DecodeError
from firmware_bridge.measurement import Measurement

__all__ = [
    "MAX_READ_REGISTERS",
    "Block",
    "DataType",
    "Point",
    "RegisterMap",
    "WordOrder",
    "decode_block",
    "decode_value",
    "encode_value",
    "plan_blocks",
]

MAX_READ_REGISTERS: Final = 125  # Modbus limit for function codes 3 and 4


class DataType(enum.StrEnum):
    FLOAT32 = "float32"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"

    @property
    def words(self) -> int:
        return _FORMATS[self][1]


_FORMATS: Final[dict[DataType, tuple[str, int]]] = {
    DataType.FLOAT32: ("f", 2),
    DataType.INT16: ("h", 1),
    DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2),
    DataType.UINT32: ("I", 2),
    DataType.INT64: ("q", 4),
    DataType.UINT64: ("Q", 4),
}


class WordOrder(enum.StrEnum):
    BIG = "big"  # most significant word first (Eastron, most meters)
    LITTLE = "little"  # least significant word first


@dataclass(frozen=True, slots=True)
class Point:
    """One value in a meter's register map."""

    metric: str
    address: int
    function: int
    dtype: DataType
    word_order: WordOrder
    scale: float
    unit: str
    kind: Kind

    def __post_init__(self) -> None:
        if self.function not in (3, 4):
            raise ValueError(f"{self.metric}: function code must be 3 or 4, got {self.function}")
        if not 0 <= self.address <= 0xFFFF - self.dtype.words + 1:
            raise ValueError(f"{self.metric}: address {self.address} out of range")
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"{self.metric}: scale must be finite and non-zero")

    @property
    def end(self) -> int:
        """One past the last register of this point."""
        return self.address + self.dtype.words


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A named set of points (e.g. ``sdm630``) and how to read them."""

    name: str
    points: tuple[Point, ...]
    max_gap: int = 0
    max_block: int = MAX_READ_REGISTERS
    description: str = ""

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError(f"register map {self.name!r} has no points")
        metrics = [p.metric for p in self.points]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"register map {self.name!r} names a metric twice")
        if not 1 <= self.max_block <= MAX_READ_REGISTERS:
            raise ValueError(f"max_block must be within 1..{MAX_READ_REGISTERS}")


@dataclass(frozen=True, slots=True)
class Block:
    """One contiguous read: function code, first address, register count, points inside."""

    function: int
    address: int
    count: int
    points: tuple[Point, ...]


def decode_value(words: Sequence[int], dtype: DataType, word_order: WordOrder) -> float:
    """The number held by ``words`` (16-bit registers) for ``dtype``; DecodeError otherwise."""
    fmt, n = _FORMATS[dtype]
    if len(words) != n:
        raise DecodeError(f"{dtype} needs {n} registers, got {len(words)}")
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise DecodeError(f"register value out of 0..65535 in {list(words)!r}")
    ordered = list(words) if word_order is WordOrder.BIG else list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in ordered)
    return float(struct.unpack(">" + fmt, raw)[0])


def encode_value(value: float, dtype: DataType, word_order: WordOrder) -> list[int]:
    """Registers holding ``value`` (rounded for integer types); used by the simulator."""
    fmt, n = _FORMATS[dtype]
    number: float | int = value if dtype is DataType.FLOAT32 else round(value)
    try:
        raw = struct.pack(">" + fmt, number)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{value!r} does not fit {dtype}") from exc
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 2 * n, 2)]
    return words if word_order is WordOrder.BIG else list(reversed(words))


def plan_blocks(register_map: RegisterMap) -> list[Block]:
    """Group the map's points into as few reads as possible.

    Points of one function code are merged while the hole between them is at most
    ``max_gap`` registers and the read stays within ``max_block`` registers.
    """
    blocks: list[Block] = []
    for function in sorted({p.function for p in register_map.points}):
        points = sorted(
            (p for p in register_map.points if p.function == function), key=lambda p: p.address
        )
        current: list[Point] = []
        start = end = 0
        for p in points:
            if current and (
                p.address - end <= register_map.max_gap
                and max(end, p.end) - start <= register_map.max_block
            ):
                current.append(p)
                end = max(end, p.end)
                continue
            if current:
                blocks.append(Block(function, start, end - start, tuple(current)))
            current, start, end = [p], p.address, p.end
        if current:
            blocks.append(Block(function, start, end - start, tuple(current)))
    return blocks


def decode_block(block: Block, words: Sequence[int], ts_ms: int) -> list[Measurement]:
    """Measurements of every point in ``block`` from the words read at ``block.address``."""
    if len(words) != block.count:
        raise DecodeError(
            f"read of {block.count} registers at {block.address} returned {len(words)}",
            offset=block.address,
        )
    out: list[Measurement] = []
    for p in block.points:
        lo = p.address - block.address
        try:
            raw = decode_value(words[lo : lo + p.dtype.words], p.dtype, p.word_order)
        except DecodeError as exc:
            raise DecodeError(f"{p.metric}: {exc}", offset=p.address) from exc
        value = raw * p.scale
        if not math.isfinite(value):
            raise DecodeError(
                f"{p.metric} at register {p.address} is not a finite number ({raw!r})",
                data=struct.pack(f">{p.dtype.words}H", *words[lo : lo + p.dtype.words]),
                offset=p.address,
            )
        out.append(Measurement(p.metric, p.unit, p.kind, ts_ms, value))
    return out
