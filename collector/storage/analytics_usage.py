"""Fleet-wide usage sums straight from the packed daily table (one binary COPY, no rows).

For scopes whose meters count whole (meter, site, fleet) the analytics need only the sum
over meters: ``sum_daily_usage`` streams ``(day, quantity, estimated, reading_count)`` of
``usage_15m_daily`` and adds the 96-slot vectors per UTC day as blocks arrive, so a month
of 10,000 meters (310,000 rows, 600 MB of packed doubles) is summed without materialising
per-interval rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from collector.errors import StorageError
from collector.storage.database import translate_errors

__all__ = ["DailySums", "sum_daily_usage"]

Conn = psycopg.Connection[Any]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_PG_EPOCH_S: Final = 946_684_800
_HEADER_LEN: Final = 19
_ROW: Final = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_day", ">i4"),
        ("day", ">i8"),
        ("len_q", ">i4"),
        ("q", ">f8", (96,)),
        ("len_e", ">i4"),
        ("e", ">f8", (96,)),
        ("len_rc", ">i4"),
        ("rc", ">i4", (96,)),
    ]
)


class DailySums:
    """Summed usage per UTC day ``day0 + k`` (Unix s of midnight) and quarter hour."""

    __slots__ = ("day0", "estimated", "quantity", "readings")

    def __init__(self, day0: int, days: int) -> None:
        self.day0 = day0
        self.quantity: F64 = np.zeros((days, 96))
        self.estimated: F64 = np.zeros((days, 96))
        self.readings: I64 = np.zeros((days, 96), dtype=np.int64)

    def add(self, rows: npt.NDArray[np.void]) -> None:
        if not bool((rows["len_q"] == 768).all() and (rows["len_rc"] == 384).all()):
            raise StorageError("unexpected NULL or resized column in usage_15m_daily")
        k = (rows["day"].astype(np.int64) // 1_000_000 + _PG_EPOCH_S - self.day0) // 86_400
        np.add.at(self.quantity, k, rows["q"].astype(np.float64))
        np.add.at(self.estimated, k, rows["e"].astype(np.float64))
        np.add.at(self.readings, k, rows["rc"].astype(np.int64))


def sum_daily_usage(
    conn: Conn, series_ids: Sequence[int] | None, start: datetime, end: datetime
) -> DailySums:
    """Usage of ``series_ids`` (None: every series) summed per UTC day in the days overlapping
    ``[start, end)``."""
    d0 = int(start.timestamp()) // 86_400 * 86_400
    d1 = -(-int(end.timestamp()) // 86_400) * 86_400
    out = DailySums(d0, (d1 - d0) // 86_400)
    where: sql.Composable = sql.SQL("day >= %s AND day < %s")
    if series_ids is not None:
        where = sql.SQL("{} AND series_id = ANY(%s)").format(where)
    params: list[Any] = [datetime.fromtimestamp(d0, UTC), datetime.fromtimestamp(d1, UTC)]
    if series_ids is not None:
        params.append(list(series_ids))
    pending = b""
    first = True
    query = sql.SQL(
        "COPY (SELECT day, quantity, estimated, reading_count FROM usage_15m_daily WHERE {})"
        " TO STDOUT (FORMAT BINARY)"
    ).format(where)
    with translate_errors("sum daily usage"), conn.cursor() as cur, cur.copy(
        query, params
    ) as copy:
        for block in copy:
            data = pending + bytes(block)
            if first:
                data = data[_HEADER_LEN:]
                first = False
            n = len(data) // _ROW.itemsize
            if n:
                out.add(np.frombuffer(data, dtype=_ROW, count=n))
            pending = data[n * _ROW.itemsize :]
    if pending not in (b"", b"\xff\xff"):
        raise StorageError("unexpected binary COPY layout of usage_15m_daily")
    return out
