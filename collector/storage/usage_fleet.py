"""The fleet rollup of derived usage: ``usage_15m`` summed over every meter of a unit.

``usage_fleet_15m`` holds, per unit and UTC 15-minute bucket, the sums of ``quantity``,
``estimated`` and ``reading_count`` over all series of that unit. Fleet analytics read a
month of it as about 3,000 rows instead of 30 million.

How it stays equal to the sum of ``usage_15m``: every writer of ``usage_15m`` (the incremental
refresh and the backfill, both through the staged rows of ``usage_stage``) calls
:func:`apply_stage_deltas` in the same transaction, just before it writes the staged rows. The
function adds, per (unit, bucket), the difference between the staged values (what the bucket
will hold) and the current ``usage_15m`` row (0 when there is none); buckets whose staged
values equal the stored ones add nothing and write no rollup row. ``usage_15m`` rows are never
deleted (emptied buckets are zeroed), so these deltas are the only changes there are.

Limits: sums are ``float8``, so the rollup equals a fresh ``GROUP BY`` up to floating-point
rounding (relative 1e-12 after many corrections, far below the 3 decimals of a reading);
:func:`resum_fleet` recomputes a range exactly. A series' unit is assumed fixed (nothing in
Tally changes it); moving a meter to another device changes nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from collector.storage.database import translate_errors

__all__ = ["FleetUsage", "apply_stage_deltas", "fleet_usage", "resum_fleet"]

Conn = psycopg.Connection[Any]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FleetUsage:
    """Summed usage of one unit's meters: ``bucket`` (Unix s of the bucket start, ascending)
    and the sums of that bucket; buckets without a rollup row are absent (zero)."""

    bucket: I64
    quantity: F64
    estimated: F64
    readings: I64


def apply_stage_deltas(conn: Conn) -> int:
    """Add the changes the rows staged in ``usage_stage`` are about to make to ``usage_15m``
    into the fleet rollup; call it in the writer's transaction BEFORE the staged rows are
    written. Returns the rollup rows touched."""
    # the stored row of each staged bucket is probed by primary key (LIMIT 1 keeps the
    # planner from hashing all of usage_15m when it misjudges the stage's size); the upsert
    # that follows reads the same index pages
    cur = conn.execute(
        "INSERT INTO usage_fleet_15m AS f (unit, bucket, quantity, estimated, reading_count)"
        " SELECT r.unit, s.bucket, sum(s.quantity - coalesce(u.quantity, 0)),"
        "  sum(s.estimated - coalesce(u.estimated, 0)),"
        "  sum(s.reading_count - coalesce(u.reading_count, 0))"
        " FROM usage_stage s JOIN series r ON r.series_id = s.series_id"
        " LEFT JOIN LATERAL (SELECT x.quantity, x.estimated, x.reading_count FROM usage_15m x"
        "  WHERE x.series_id = s.series_id AND x.bucket = s.bucket LIMIT 1) u ON true"
        " WHERE s.quantity IS DISTINCT FROM coalesce(u.quantity, 0)"
        "  OR s.estimated IS DISTINCT FROM coalesce(u.estimated, 0)"
        "  OR s.reading_count IS DISTINCT FROM coalesce(u.reading_count, 0)"
        " GROUP BY r.unit, s.bucket"
        " ON CONFLICT (unit, bucket) DO UPDATE SET quantity = f.quantity + excluded.quantity,"
        "  estimated = f.estimated + excluded.estimated,"
        "  reading_count = f.reading_count + excluded.reading_count"
    )
    return max(cur.rowcount, 0)


def resum_fleet(conn: Conn, start: datetime, end: datetime) -> int:
    """Recompute the rollup of the buckets in ``[start, end)`` from ``usage_15m`` exactly (a
    repair, or after writing ``usage_15m`` by other means); returns the rows written."""
    with translate_errors("re-sum fleet usage"), conn.transaction():
        conn.execute(
            "DELETE FROM usage_fleet_15m WHERE bucket >= %s AND bucket < %s", (start, end)
        )
        cur = conn.execute(
            "INSERT INTO usage_fleet_15m (unit, bucket, quantity, estimated, reading_count)"
            " SELECT r.unit, u.bucket, sum(u.quantity), sum(u.estimated), sum(u.reading_count)"
            " FROM usage_15m u JOIN series r ON r.series_id = u.series_id"
            " WHERE u.bucket >= %s AND u.bucket < %s GROUP BY r.unit, u.bucket",
            (start, end),
        )
    return max(cur.rowcount, 0)


def fleet_usage(conn: Conn, unit: str, start: datetime, end: datetime) -> FleetUsage:
    """The rollup of ``unit`` for the buckets starting in ``[start, end)``."""
    with translate_errors("load fleet usage"), conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT extract(epoch FROM bucket)::bigint, quantity, estimated, reading_count"
            " FROM usage_fleet_15m WHERE unit = %s AND bucket >= %s AND bucket < %s"
            " ORDER BY bucket",
            (unit, start, end),
        )
        rows = cur.fetchall()
    if not rows:
        z = np.zeros(0)
        return FleetUsage(np.zeros(0, dtype=np.int64), z, z.copy(), np.zeros(0, dtype=np.int64))
    b, q, e, rc = zip(*rows, strict=True)
    return FleetUsage(
        np.asarray(b, dtype=np.int64),
        np.asarray(q, dtype=np.float64),
        np.asarray(e, dtype=np.float64),
        np.asarray(rc, dtype=np.int64),
    )
