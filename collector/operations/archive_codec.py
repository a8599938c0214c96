"""Lossless, compact encoding of readings for the Parquet archive (pure: arrays in, arrays out).

Rows are sorted by series and time and cut into blocks (one Parquet row group each). Within a
block the time column is stored as differences from the previous row (microseconds; readings
every N seconds become one repeated number) and the value column as differences of the IEEE-754
bit patterns of consecutive values (a slowly rising counter changes only its low bits). Both are
int64 arithmetic modulo 2^64, so ``decode(encode(x)) == x`` bit for bit, NaN and -0.0 included.
zstd then takes a month of 15-minute counter readings to under 2 bytes per reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["SCHEMA", "ArchiveRows", "decode_block", "encode_block", "sort_rows"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

SCHEMA: Final = pa.schema([
    ("series_id", pa.int64()),   # sorted: run-length encoded by Parquet
    ("ts_delta", pa.int64()),    # µs since 2000-01-01 UTC, as differences (first row: itself)
    ("value_delta", pa.int64()),  # float8 bit patterns, as differences (first row: itself)
])


@dataclass(frozen=True, slots=True)
class ArchiveRows:
    """Readings as parallel arrays: series id, time (µs since 2000-01-01 UTC), value."""

    series_id: I64
    ts_us: I64
    value: F64

    def __post_init__(self) -> None:
        n = self.series_id.shape[0]
        if self.ts_us.shape[0] != n or self.value.shape[0] != n:
            raise ValueError("series_id, ts_us and value must have the same length")

    def __len__(self) -> int:
        return int(self.series_id.shape[0])

    def equals(self, other: ArchiveRows) -> bool:
        """Row for row and bit for bit (values compared as bit patterns)."""
        return (len(self) == len(other)
                and bool(np.array_equal(self.series_id, other.series_id))
                and bool(np.array_equal(self.ts_us, other.ts_us))
                and bool(np.array_equal(self.value.view(np.int64), other.value.view(np.int64))))


def sort_rows(rows: ArchiveRows) -> ArchiveRows:
    """By series, then time, then value bit pattern (a total order: same input, same file)."""
    order = np.lexsort((rows.value.view(np.int64), rows.ts_us, rows.series_id))
    return ArchiveRows(rows.series_id[order], rows.ts_us[order], rows.value[order])


def _delta(a: I64) -> I64:
    out = np.empty_like(a)
    if a.shape[0]:
        out[0] = a[0]
        np.subtract(a[1:], a[:-1], out=out[1:])  # wraps modulo 2^64, undone by cumsum
    return out


def encode_block(rows: ArchiveRows) -> pa.Table:
    """One block (row group) of sorted rows as the archive's columns."""
    with np.errstate(over="ignore"):
        return pa.table({
            "series_id": pa.array(rows.series_id, pa.int64()),
            "ts_delta": pa.array(_delta(rows.ts_us), pa.int64()),
            "value_delta": pa.array(_delta(rows.value.view(np.int64)), pa.int64()),
        }, schema=SCHEMA)


def decode_block(table: pa.Table) -> ArchiveRows:
    """The rows of one block, exactly as encoded."""
    sid = table.column("series_id").to_numpy().astype(np.int64)
    with np.errstate(over="ignore"):
        ts = np.cumsum(table.column("ts_delta").to_numpy().astype(np.int64))
        bits = np.cumsum(table.column("value_delta").to_numpy().astype(np.int64))
    return ArchiveRows(sid, ts.astype(np.int64), bits.astype(np.int64).view(np.float64))
