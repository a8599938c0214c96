"""Reading derived usage: per series at any resolution, and in bulk for billing.

Both schema flavours answer the same functions. Hourly/daily/monthly buckets in a customer's
zone are sums of 15-minute rows (``date_trunc(unit, bucket, zone)`` in SQL, DST-correct); on
TimescaleDB the continuous aggregates ``usage_1h``/``usage_1d`` are used where their UTC
buckets coincide with the zone's (hours in whole-hour zones, days in UTC).
``load_usage_matrix`` streams ``usage_15m_daily`` with a binary ``COPY … TO STDOUT`` into numpy.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from collector.errors import StorageError, UsageError
from collector.storage.database import translate_errors
from collector.storage.usage_store import uses_timescale
from collector.usage import BUCKET_15M_S, Resolution, UsageMatrix, bucket_edges

__all__ = [
    "SeriesInfo",
    "SeriesUsage",
    "find_series",
    "load_usage_matrix",
    "series_info",
    "usage_for_series",
]

Conn = psycopg.Connection[Any]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_PG_EPOCH_S: Final = 946_684_800
_COPY_HEADER_LEN: Final = 19
_TRUNC = {Resolution.H1: "hour", Resolution.D1: "day", Resolution.MO1: "month"}


@dataclass(frozen=True, slots=True)
class SeriesUsage:
    """Usage of several series on one bucket grid: matrices ``(len(series_ids), n_buckets)``.

    ``estimated`` is the estimated part of ``quantity``; ``coverage`` the fraction of each
    bucket with known or estimated usage; ``peak`` NaN where there is none.
    """

    series_ids: I64
    starts: I64
    ends: I64
    quantity: F64
    estimated: F64
    quarantined: F64
    coverage: F64
    reading_count: I64
    flags: I64
    peak: F64


def _source(conn: Conn, res: Resolution, edges: I64) -> tuple[str, str | None]:
    """(table, date_trunc unit or None) that gives ``res`` buckets exactly."""
    if res is Resolution.M15:
        return "usage_15m", None
    if uses_timescale(conn):
        if res is Resolution.H1 and not np.any(edges % 3600):
            return "usage_1h", None
        if res is Resolution.D1 and not np.any(edges % 86400):
            return "usage_1d", None
    return "usage_15m", _TRUNC[res]


def usage_for_series(
    conn: Conn,
    series_ids: Sequence[int],
    start: datetime,
    end: datetime,
    *,
    resolution: Resolution | str,
    tz: str = "UTC",
) -> SeriesUsage:
    """Usage of ``series_ids`` in the ``resolution`` buckets (in ``tz``) overlapping
    ``[start, end)``; buckets without rows are zero with coverage 0."""
    res = Resolution(resolution)
    edges = bucket_edges(start.timestamp(), end.timestamp(), res, tz)
    if np.any(edges % BUCKET_15M_S):
        raise UsageError(f"zone {tz} is not aligned to 15-minute buckets")
    table, unit = _source(conn, res, edges)
    query: sql.Composable
    if unit is None:
        bucket = sql.SQL("extract(epoch FROM bucket)::float8")
        scale = sql.SQL("coverage")
        query = sql.SQL(
            "SELECT series_id, {b}, quantity, estimated, quarantined, {c}, reading_count,"
            " flags, peak FROM {t} WHERE series_id = ANY(%s) AND bucket >= to_timestamp(%s)"
            " AND bucket < to_timestamp(%s)"
        ).format(b=bucket, c=scale, t=sql.Identifier(table))
        params: tuple[Any, ...] = (list(series_ids), float(edges[0]), float(edges[-1]))
    else:
        query = sql.SQL(
            "SELECT series_id, extract(epoch FROM date_trunc(%s, bucket, %s))::float8,"
            " sum(quantity), sum(estimated), sum(quarantined), sum(coverage) * 900,"
            " sum(reading_count), bit_or(flags), max(peak) FROM usage_15m"
            " WHERE series_id = ANY(%s) AND bucket >= to_timestamp(%s)"
            " AND bucket < to_timestamp(%s) GROUP BY 1, 2"
        )
        params = (unit, tz, list(series_ids), float(edges[0]), float(edges[-1]))
    with translate_errors("load usage"):
        rows = conn.execute(query, params).fetchall()
    ids = np.asarray(list(series_ids), dtype=np.int64)
    n, nb = ids.shape[0], edges.shape[0] - 1
    lengths = np.diff(edges).astype(np.float64)
    out = {k: np.zeros((n, nb)) for k in ("q", "e", "qu", "c")}
    counts = np.zeros((n, nb), dtype=np.int64)
    flags = np.zeros((n, nb), dtype=np.int64)
    peak = np.full((n, nb), np.nan)
    row_of = {int(s): i for i, s in enumerate(ids)}
    for r in rows:
        i = row_of[int(r[0])]
        j = int(np.searchsorted(edges, r[1], side="right")) - 1
        out["q"][i, j] += r[2]
        out["e"][i, j] += r[3]
        out["qu"][i, j] += r[4]
        out["c"][i, j] += r[5] * (1.0 if unit else float(lengths[j]))
        counts[i, j] += int(r[6])
        flags[i, j] |= int(r[7])
        if r[8] is not None:
            peak[i, j] = r[8] if np.isnan(peak[i, j]) else max(peak[i, j], r[8])
    return SeriesUsage(
        ids,
        edges[:-1],
        edges[1:],
        out["q"],
        out["e"],
        out["qu"],
        np.clip(out["c"] / lengths[None, :], 0.0, 1.0),
        counts,
        flags,
        peak,
    )


def _fields(row: memoryview, pos: int, count: int) -> tuple[list[memoryview], int]:
    """The ``count`` non-NULL fields of a binary COPY tuple starting after its field count."""
    out: list[memoryview] = []
    for _ in range(count):
        (size,) = struct.unpack_from(">i", row, pos)
        if size < 0:
            raise StorageError("unexpected NULL in usage_15m_daily")
        out.append(row[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out, pos


def load_usage_matrix(
    conn: Conn, series_ids: Sequence[int], start: datetime, end: datetime
) -> UsageMatrix:
    """All 15-minute usage of ``series_ids`` in ``[start, end)`` (UTC 15-minute grid) as dense
    matrices, in one binary ``COPY … TO STDOUT``: one tuple per series carrying its packed
    ``usage_15m_daily`` days, decoded by numpy (Python touches each series once)."""
    s0 = int(np.floor(start.timestamp() / BUCKET_15M_S)) * BUCKET_15M_S
    s1 = int(np.ceil(end.timestamp() / BUCKET_15M_S)) * BUCKET_15M_S
    d0 = s0 // 86400 * 86400
    d1 = -(-s1 // 86400) * 86400
    ndays = (d1 - d0) // 86400
    ids = np.unique(np.asarray(list(series_ids), dtype=np.int64))
    quantity = np.zeros((ids.shape[0], ndays, 96))
    estimated = np.zeros_like(quantity)
    counts = np.zeros((ids.shape[0], ndays, 96), dtype=np.int64)
    chunks: list[bytes] = []
    with translate_errors("load usage matrix"), conn.cursor() as cur, cur.copy(
        "COPY (SELECT series_id,"
        " string_agg(int8send(extract(epoch FROM day)::int8), ''::bytea ORDER BY day),"
        " string_agg(quantity, ''::bytea ORDER BY day),"
        " string_agg(estimated, ''::bytea ORDER BY day),"
        " string_agg(reading_count, ''::bytea ORDER BY day)"
        " FROM usage_15m_daily WHERE series_id = ANY(%s)"
        " AND day >= to_timestamp(%s) AND day < to_timestamp(%s)"
        " GROUP BY series_id) TO STDOUT (FORMAT BINARY)",
        (ids.tolist(), float(d0), float(d1)),
    ) as copy:
        chunks.extend(bytes(c) for c in copy)
    data = memoryview(b"".join(chunks))
    pos, end_pos = _COPY_HEADER_LEN, len(data) - 2
    while pos < end_pos:
        (nfields,) = struct.unpack_from(">h", data, pos)
        (sid_b, day_b, q_b, e_b, rc_b), pos = _fields(data, pos + 2, nfields)
        i = int(np.searchsorted(ids, struct.unpack(">q", sid_b)[0]))
        days = (np.frombuffer(day_b, dtype=">i8") - d0) // 86400
        quantity[i, days] = np.frombuffer(q_b, dtype=">f8").reshape(-1, 96)
        estimated[i, days] = np.frombuffer(e_b, dtype=">f8").reshape(-1, 96)
        counts[i, days] = np.frombuffer(rc_b, dtype=">i4").reshape(-1, 96)
    j0 = (s0 - d0) // BUCKET_15M_S
    j1 = (s1 - d0) // BUCKET_15M_S
    starts = np.arange(s0, s1, BUCKET_15M_S, dtype=np.int64)
    n = ids.shape[0]
    return UsageMatrix(
        ids,
        starts,
        starts + BUCKET_15M_S,
        quantity.reshape(n, -1)[:, j0:j1],
        estimated.reshape(n, -1)[:, j0:j1],
        counts.reshape(n, -1)[:, j0:j1],
    )


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """Identity of a series as the API shows it."""

    series_id: int
    device_id: str
    meter: str
    metric: str
    unit: str
    kind: str


def series_info(conn: Conn, series_id: int) -> SeriesInfo | None:
    """The series with this id, or None."""
    with translate_errors("load series"):
        row = conn.execute(
            "SELECT series_id, device_id, meter, metric, unit, kind FROM series"
            " WHERE series_id = %s",
            (series_id,),
        ).fetchone()
    return SeriesInfo(*row) if row else None


def find_series(conn: Conn, device_id: str, meter: str, metric: str) -> SeriesInfo | None:
    """The series of a device's meter metric, or None."""
    with translate_errors("find series"):
        row = conn.execute(
            "SELECT series_id, device_id, meter, metric, unit, kind FROM series"
            " WHERE device_id = %s AND meter = %s AND metric = %s",
            (device_id, meter, metric),
        ).fetchone()
    return SeriesInfo(*row) if row else None
