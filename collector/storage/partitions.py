"""Upcoming monthly ``readings`` partitions (plain PostgreSQL; a no-op on TimescaleDB)."""

from __future__ import annotations

from datetime import datetime, timedelta

from .database import Pool, translate_errors

__all__ = ["ensure_reading_partitions"]


def ensure_reading_partitions(pool: Pool, now: datetime, *, months_ahead: int = 3) -> int:
    """Create the partitions of last month through ``months_ahead`` months after ``now``'s month;
    returns how many were created."""
    with translate_errors("ensure partitions"), pool.connection(timeout=5.0) as conn:
        row = conn.execute(
            "SELECT tally_ensure_reading_partitions(%s, %s)",
            (now - timedelta(days=31), months_ahead + 2),
        ).fetchone()
    return int(row[0]) if row else 0
