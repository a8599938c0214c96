"""TimescaleDB: the collector refreshes the continuous aggregates under the owner role only,
and the TimescaleDB jobs (compression policy) are visible to /health."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from collector.errors import StorageError
from collector.metrics.families import TallyMetrics
from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from collector.storage.operations_jobs import job_health
from collector.storage.usage_store import refresh_rollups

from .scenario import insert_readings, insert_usage, mark_rollups_pending, new_series, utc

DAY = utc(2026, 1, 5)


def test_rollups_refresh_under_the_owner_role_and_fail_loudly_under_another(
    timescale_db: str,
) -> None:
    migrate(timescale_db, use_timescale=True)
    stranger = f"tally_not_owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        me = conn.execute("SELECT current_user").fetchone()
        assert me is not None
        conn.execute(f"CREATE ROLE {stranger} NOLOGIN")
        conn.execute(f"GRANT SELECT, DELETE ON usage_rollup_pending TO {stranger}")
        try:
            sid = new_series(conn)
            insert_usage(conn, [(sid, DAY + timedelta(minutes=15 * k), 1.0, 0.0, 0.0, 1.0, 1, 0,
                                 None) for k in range(8)])
            mark_rollups_pending(conn, DAY, DAY + timedelta(hours=2))
            with pytest.raises(StorageError, match="owner"):
                refresh_rollups(conn, owner_role=stranger)
            assert conn.execute("SELECT current_user").fetchone() == me  # role restored
            assert conn.execute("SELECT count(*) FROM usage_rollup_pending").fetchone() == (1,)
            assert refresh_rollups(conn, owner_role=str(me[0])) == 1
            assert conn.execute("SELECT current_user").fetchone() == me
            row = conn.execute("SELECT sum(quantity) FROM usage_1h WHERE series_id = %s",
                               (sid,)).fetchone()
            assert row is not None
            assert float(row[0]) == 8.0
        finally:
            conn.execute("RESET ROLE")
            conn.execute(f"DROP OWNED BY {stranger}")
            conn.execute(f"DROP ROLE IF EXISTS {stranger}")


def test_job_health_lists_the_compression_policy(timescale_db: str) -> None:
    """The compression policy is listed; it is failing exactly when its last run failed (on a
    native TimescaleDB the scheduler may have run it already: on PostgreSQL 15.20 every run
    fails), with the error; it is overdue once its next start lies over an hour in the past,
    judged at the database's time or at a given one."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        jobs = job_health(conn)
        comp = [j for j in jobs if j.hypertable == "readings"]
        assert comp, jobs
        job = comp[0]
        assert job.failing == (job.last_run_status == "Failed")
        if job.failing:
            assert job.last_error
        if job.next_start is None:  # no scheduler has seen it yet (the sandbox has none)
            assert not job.overdue
            conn.execute("SELECT alter_job(%s, next_start => now() - interval '3 hours')",
                         (job.job_id,))
            job = next(j for j in job_health(conn) if j.job_id == job.job_id)
            assert job.overdue
        assert job.next_start is not None
        # judged at another time, from the same catalog row (the scheduler may move next_start,
        # but not by years)
        later = job.next_start + timedelta(days=3650)
        late = next(j for j in job_health(conn, now=later) if j.job_id == job.job_id)
        assert late.overdue
        early = next(j for j in job_health(conn, now=utc(2000, 1, 1)) if j.job_id == job.job_id)
        assert not early.overdue


def test_metrics_expose_the_compression_policy(timescale_db: str) -> None:
    """/metrics' families carry the compression policy with the state job_health reports."""
    migrate(timescale_db, use_timescale=True)
    pool = open_pool(timescale_db, min_size=1, max_size=1)
    try:
        pool.wait(timeout=15)
        families = list(TallyMetrics(pool, None).collect())
        with pool.connection() as conn:
            job = next(j for j in job_health(conn) if j.hypertable == "readings")
    finally:
        pool.close()
    samples = {
        (s.name, s.labels.get("job_id")): s.value for f in families for s in f.samples
    }
    assert samples[("tally_metrics_database_up", None)] == 1
    assert samples[("tally_timescale_job_failing", str(job.job_id))] == float(job.failing)
    assert samples[("tally_timescale_job_overdue", str(job.job_id))] == float(job.overdue)
    assert samples[("tally_timescale_job_failures_total", str(job.job_id))] >= float(job.failing)


def test_a_compression_policy_behind_its_horizon_is_overdue_however_it_is_run(
    timescale_db: str,
) -> None:
    """Chunks past compress_after + a schedule interval + the grace, still uncompressed, make
    the policy overdue (counted, whoever should have run it); compressing them clears it; a
    paused policy (run from cron instead) is not reported failing for its old scheduler runs."""
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        job = next(j for j in job_health(conn) if j.hypertable == "readings")
        conn.execute("SELECT alter_job(%s, scheduled => false)", (job.job_id,))  # no scheduler
        sid = new_series(conn)
        t0 = utc(2026, 1, 1).timestamp()  # 40 days, hourly: chunks of 30 days (epoch-aligned)
        insert_readings(conn, sid, [t0 + 3600.0 * h for h in range(24 * 40)],
                        [0.5 * h for h in range(24 * 40)])
        ends = [r[0] for r in conn.execute(
            "SELECT range_end FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'readings' ORDER BY range_end").fetchall()]
        assert ends == [utc(2026, 1, 7), utc(2026, 2, 6), utc(2026, 3, 8)]
        at = utc(2026, 3, 1)  # the first two chunks ended > 7 days + 12 h + 1 h before

        def policy() -> Any:
            return next(j for j in job_health(conn, now=at) if j.job_id == job.job_id)

        early = next(j for j in job_health(conn, now=utc(2026, 1, 14)) if j.job_id == job.job_id)
        assert early.chunks_behind == 0  # on Jan 14, no chunk ended 7 days + 13 h before
        behind = policy()
        assert behind.chunks_behind == 2
        assert behind.overdue
        assert not behind.scheduled
        assert not behind.failing
        conn.execute("SELECT compress_chunk(c) FROM show_chunks('readings', older_than => %s) c",
                     (utc(2026, 1, 8),))
        assert policy().chunks_behind == 1
        conn.execute("SELECT compress_chunk(c, if_not_compressed => true)"
                     " FROM show_chunks('readings') c")
        done = policy()
        assert done.chunks_behind == 0
        assert not done.overdue
