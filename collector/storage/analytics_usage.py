"""Fleet-wide usage sums straight from the packed daily table (one row per day).

For scopes whose meters count whole (meter, site, fleet) the analytics need only the sum
over meters: ``sum_daily_usage`` has the server concatenate each UTC day's packed vectors of
every meter into one value, so a month of 10,000 meters comes back as 31 rows and is summed
by numpy without materialising per-interval rows.
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
class DailySums:
    """Summed usage per UTC day ``day0 + k`` (Unix s of midnight) and quarter hour."""

    __slots__ = ("day0", "estimated", "quantity", "readings")

    def __init__(self, day0: int, days: int) -> None:
        self.day0 = day0
        self.quantity: F64 = np.zeros((days, 96))
        self.estimated: F64 = np.zeros((days, 96))
        self.readings: I64 = np.zeros((days, 96), dtype=np.int64)


def sum_daily_usage(
    conn: Conn, series_ids: Sequence[int] | None, start: datetime, end: datetime
) -> DailySums:
    """Usage of ``series_ids`` (None: every series) summed per UTC day in the days overlapping
    ``[start, end)``: one row per day comes back, the day's packed vectors of every meter
    concatenated by the server (``string_agg``), summed by numpy in one reshape."""
    d0 = int(start.timestamp()) // 86_400 * 86_400
    d1 = -(-int(end.timestamp()) // 86_400) * 86_400
    out = DailySums(d0, (d1 - d0) // 86_400)
    where: sql.Composable = sql.SQL("day >= %s AND day < %s")
    params: list[Any] = [datetime.fromtimestamp(d0, UTC), datetime.fromtimestamp(d1, UTC)]
    if series_ids is not None:
        where = sql.SQL("{} AND series_id = ANY(%s)").format(where)
        params.append(list(series_ids))
    query = sql.SQL(
        "SELECT extract(epoch FROM day)::bigint, string_agg(quantity, ''::bytea),"
        " string_agg(estimated, ''::bytea), string_agg(reading_count, ''::bytea)"
        " FROM usage_15m_daily WHERE {} GROUP BY day"
    ).format(where)
    with translate_errors("sum daily usage"), conn.cursor(binary=True) as cur:
        cur.execute(query, params)
        for day, q, e, rc in cur:
            k = (int(day) - d0) // 86_400
            if len(q) % 768 or len(e) != len(q) or len(rc) * 2 != len(q):
                raise StorageError("unexpected packed usage length in usage_15m_daily")
            out.quantity[k] += np.frombuffer(q, dtype=">f8").reshape(-1, 96).sum(axis=0)
            out.estimated[k] += np.frombuffer(e, dtype=">f8").reshape(-1, 96).sum(axis=0)
            out.readings[k] += np.frombuffer(rc, dtype=">i4").reshape(-1, 96).sum(axis=0)
    return out
