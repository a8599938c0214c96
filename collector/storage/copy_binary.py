"""PostgreSQL binary COPY encoding of reading rows, built with numpy (no per-row Python).

The stream for ``COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)`` is a fixed
header, one fixed-size tuple per row and a trailer. Every tuple has the same layout, so the rows
are one big-endian structured array::

    int16 field count (3)
    int32 length (8)  int64 series_id
    int32 length (8)  int64 ts        microseconds since 2000-01-01T00:00:00Z (timestamptz)
    int32 length (8)  float8 value

Pure code: arrays in, bytes out.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["COPY_HEADER", "COPY_TRAILER", "PG_EPOCH_MS", "ROW_DTYPE", "encode_readings_copy"]

COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER: Final = b"\xff\xff"
PG_EPOCH_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z in Unix milliseconds

ROW_DTYPE: Final = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_series", ">i4"),
        ("series_id", ">i8"),
        ("len_ts", ">i4"),
        ("ts", ">i8"),
        ("len_value", ">i4"),
        ("value", ">f8"),
    ]
)


def encode_readings_copy(
    series_ids: npt.NDArray[np.int64],
    ts_ms: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
) -> bytes:
    """The binary COPY stream for rows ``(series_id, ts, value)`` (arrays of equal length)."""
    n = series_ids.shape[0]
    if ts_ms.shape[0] != n or values.shape[0] != n:
        raise ValueError(f"column lengths differ: {n}, {ts_ms.shape[0]}, {values.shape[0]}")
    rows = np.empty(n, dtype=ROW_DTYPE)
    rows["nfields"] = 3
    rows["len_series"] = 8
    rows["series_id"] = series_ids
    rows["len_ts"] = 8
    rows["ts"] = (ts_ms - PG_EPOCH_MS) * 1000
    rows["len_value"] = 8
    rows["value"] = values
    return b"".join((COPY_HEADER, rows.tobytes(), COPY_TRAILER))
