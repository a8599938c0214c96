"""Database-side operations figures for /metrics (cheap aggregate queries, one round trip)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from collector.storage.database import translate_errors

__all__ = ["DatabaseFigures", "database_figures", "usage_refresh_backlog"]

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class DatabaseFigures:
    dead_letters_by_reason: dict[str, int]
    usage_dirty_rows: int
    usage_refresh_lag_s: float  # age of the oldest range waiting for the usage refresh
    runs: list[tuple[str, str, int, int]]  # running billing runs: (period, kind, done, total)
    webhook_pending: int
    webhook_oldest_s: float
    webhook_failed: int


def database_figures(conn: Conn) -> DatabaseFigures:
    """Dead letters per reason (the reason's first 60 characters, so free-text details do not
    explode the label set), usage-refresh lag, billing runs in progress, webhook backlog."""
    with translate_errors("load metrics"):
        dl = conn.execute(
            "SELECT left(reason, 60), count(*) FROM dead_letters GROUP BY 1 ORDER BY 2 DESC"
            " LIMIT 50"
        ).fetchall()
        dirty = usage_refresh_backlog(conn)
        runs = conn.execute(
            "SELECT period, kind, done_customers, total_customers FROM billing_runs"
            " WHERE status = 'running' ORDER BY run_id"
        ).fetchall()
        hooks = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'),"
            " coalesce(extract(epoch FROM now() - min(created_at)"
            "  FILTER (WHERE status = 'pending')), 0),"
            " count(*) FILTER (WHERE status = 'failed') FROM webhook_deliveries"
        ).fetchone()
    assert hooks is not None
    return DatabaseFigures(
        {str(r[0]): int(r[1]) for r in dl},
        dirty[0],
        dirty[1],
        [(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in runs],
        int(hooks[0]),
        float(hooks[1]),
        int(hooks[2]),
    )


def usage_refresh_backlog(conn: Conn) -> tuple[int, float]:
    """Ranges waiting for the usage refresh, and the age in seconds of the oldest one."""
    with translate_errors("load usage refresh backlog"):
        row = conn.execute(
            "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(queued_at)),"
            " 0)::float8 FROM usage_dirty"
        ).fetchone()
    assert row is not None
    return int(row[0]), float(row[1])
