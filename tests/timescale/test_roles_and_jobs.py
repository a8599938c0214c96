"""TimescaleDB: the collector refreshes the continuous aggregates under the owner role only,
and the TimescaleDB jobs (compression policy) are visible to /health."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest

from collector.errors import StorageError
from collector.storage.migrate import migrate
from collector.storage.operations_jobs import job_health
from collector.storage.usage_store import refresh_rollups

from .scenario import insert_usage, mark_rollups_pending, new_series, utc

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
    migrate(timescale_db, use_timescale=True)
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        jobs = job_health(conn)
        comp = [j for j in jobs if j.hypertable == "readings"]
        assert comp, jobs
        assert not comp[0].failing  # never ran yet: neither failed nor, just created, overdue
        assert not comp[0].overdue
        # a job whose next start lies far in the past is reported overdue
        conn.execute("SELECT alter_job(%s, next_start => now() - interval '3 hours')",
                     (comp[0].job_id,))
        late = next(j for j in job_health(conn) if j.job_id == comp[0].job_id)
        assert late.overdue
