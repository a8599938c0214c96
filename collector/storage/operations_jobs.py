"""TimescaleDB background jobs (compression policy, ...) as seen by ``/health``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from collector.storage.database import Pool, translate_errors

__all__ = ["JobHealth", "job_health", "timescale_jobs"]


# chunks_behind: for a compression policy, the chunks of its hypertable that ended more than
# compress_after + one schedule interval + the grace ago and are still not compressed, i.e. what
# the policy should have done, whoever runs it (the scheduler, or `CALL run_job` from cron)
_JOBS_SELECT: Final = (
    "WITH t AS (SELECT coalesce(%s::timestamptz, now()) AS now,"
    "   make_interval(secs => %s) AS grace)"
    " SELECT j.job_id, j.application_name, j.hypertable_name, s.last_run_status,"
    " CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END,"
    " CASE WHEN isfinite(s.next_start) THEN s.next_start END,"
    " coalesce(s.total_failures, 0), {last_error},"
    " coalesce(isfinite(s.next_start) AND s.next_start < t.now - t.grace, false),"
    " j.scheduled,"
    " CASE WHEN j.proc_name = 'policy_compression' AND j.config ? 'compress_after'"
    "  AND j.config->>'compress_after' ~ '^[0-9]+ '"
    "  THEN (SELECT count(*) FROM timescaledb_information.chunks c"
    "   WHERE c.hypertable_schema = j.hypertable_schema"
    "   AND c.hypertable_name = j.hypertable_name AND NOT c.is_compressed"
    "   AND c.range_end < t.now - (j.config->>'compress_after')::interval"
    "    - j.schedule_interval - t.grace) ELSE 0 END"
    " FROM timescaledb_information.jobs j CROSS JOIN t"
    " LEFT JOIN timescaledb_information.job_stats s USING (job_id)"
    " WHERE j.job_id >= 1000 ORDER BY j.job_id"
)
# job_errors exists from TimescaleDB 2.15 on
_JOBS_WITH_ERRORS: Final = _JOBS_SELECT.replace(
    "{last_error}",
    "(SELECT e.err_message FROM timescaledb_information.job_errors e"
    " WHERE e.job_id = j.job_id ORDER BY e.start_time DESC LIMIT 1)",
)
_JOBS: Final = _JOBS_SELECT.replace("{last_error}", "NULL::text")


@dataclass(frozen=True, slots=True)
class JobHealth:
    """One TimescaleDB job: its last run and whether it is failing or overdue."""

    job_id: int
    name: str
    hypertable: str | None
    last_run_status: str | None
    last_run_at: datetime | None
    next_start: datetime | None
    total_failures: int
    last_error: str | None
    failing: bool
    overdue: bool
    scheduled: bool = True  # False: paused (alter_job ... scheduled => false)
    chunks_behind: int = 0  # compression policy: chunks past its horizon still uncompressed


def timescale_jobs(pool: Pool, *, grace_s: float = 3600.0) -> list[JobHealth]:
    """:func:`job_health` on a pooled connection (waits at most 2 s for one)."""
    with translate_errors("timescale jobs"), pool.connection(timeout=2.0) as conn:
        return job_health(conn, grace_s=grace_s)


def job_health(conn: psycopg.Connection[Any], *, grace_s: float = 3600.0,
               now: datetime | None = None) -> list[JobHealth]:
    """The schema's TimescaleDB jobs (empty without TimescaleDB). ``failing``: the last run by
    the scheduler failed and the job is still scheduled (a paused job run from cron keeps its
    last scheduler failure); ``overdue``: the next start is more than ``grace_s`` before ``now``
    (default: the database's clock), i.e. the scheduler is not running it, or a compression
    policy has ``chunks_behind`` (chunks it should have compressed by now, however it is run)."""
    with translate_errors("timescale jobs"):
        has = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        if not has:
            return []
        errors = conn.execute(
            "SELECT to_regclass('timescaledb_information.job_errors') IS NOT NULL"
        ).fetchone()
        rows = conn.execute(
            _JOBS_WITH_ERRORS if errors and errors[0] else _JOBS, (now, grace_s)
        ).fetchall()
    return [
        JobHealth(int(r[0]), str(r[1]), r[2], r[3], r[4], r[5], int(r[6]), r[7],
                  r[3] == "Failed" and bool(r[9]), bool(r[8]) or int(r[10]) > 0,
                  bool(r[9]), int(r[10]))
        for r in rows
    ]
