"""The collector's least-privilege role on plain PostgreSQL, with real non-superuser roles.

Migrations run as an owner role that owns the database but is no superuser; the collector
connects as a role that was only given ``tally_grant_collector``'s privileges. It must ingest,
consume ``usage_dirty``, maintain partitions and bill, and must not be able to change the schema.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from collector.cli import main as cli_main
from collector.errors import MigrationError
from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from collector.storage.partitions import ensure_reading_partitions
from collector.storage.usage_store import refresh_usage


def as_user(url: str, user: str) -> str:
    p = urlsplit(url)
    host = p.hostname or "127.0.0.1"
    netloc = f"{user}@{host}" + (f":{p.port}" if p.port else "")
    return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


@dataclass(frozen=True)
class Roles:
    owner: str
    collector: str
    owner_url: str
    collector_url: str


@pytest.fixture
def roles(pg_url: str) -> Iterator[Roles]:
    tag = uuid.uuid4().hex[:8]
    owner, collector = f"tally_owner_{tag}", f"tally_collector_{tag}"
    db = urlsplit(pg_url).path.lstrip("/")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        conn.execute(f"CREATE ROLE {collector} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        conn.execute(f'ALTER DATABASE "{db}" OWNER TO {owner}')
    try:
        yield Roles(owner, collector, as_user(pg_url, owner), as_user(pg_url, collector))
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{db}" OWNER TO CURRENT_USER')
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for r in (collector, owner):
                conn.execute(f"REASSIGN OWNED BY {r} TO CURRENT_USER")
                conn.execute(f"DROP OWNED BY {r}")
                conn.execute(f"DROP ROLE {r}")


def test_collector_role_ingests_refreshes_and_keeps_partitions_but_cannot_alter_schema(
    roles: Roles,
) -> None:
    assert migrate(roles.owner_url)  # a non-superuser owner applies every migration
    with psycopg.connect(roles.owner_url, autocommit=True) as conn:
        conn.execute("SELECT tally_grant_collector(%s::regrole)", (roles.collector,))

    t0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
    with psycopg.connect(roles.collector_url, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone() == (False,)
        sid = conn.execute(
            "INSERT INTO series (device_id, meter, metric, unit, kind)"
            " VALUES ('dev-r', 'm1', 'energy', 'kWh', 'cumulative') RETURNING series_id"
        ).fetchone()
        assert sid is not None
        ts = [t0 + 60 * i for i in range(120)]
        with conn.transaction():
            conn.execute(
                "INSERT INTO readings (series_id, ts, value) SELECT %s, to_timestamp(t), t - %s"
                " FROM unnest(%s::float8[]) AS t", (sid[0], t0, ts))
            conn.execute("INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
                         " VALUES (%s, to_timestamp(%s), to_timestamp(%s))",
                         (sid[0], ts[0], ts[-1]))
        report = refresh_usage(conn, datetime.now(UTC))  # DELETE FROM usage_dirty included
        assert report.dirty_rows == 1
        assert report.buckets_written == 8
        assert conn.execute("SELECT count(*) FROM usage_dirty").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE usage_dirty")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE readings_p209901 PARTITION OF readings"
                         " FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')")

    pool = open_pool(roles.collector_url, name="roles-test")
    try:
        pool.wait(10)
        created = ensure_reading_partitions(pool, datetime(2031, 6, 15, tzinfo=UTC))
    finally:
        pool.close()
    assert created == 5  # May 2031 .. Sep 2031, made by the owner's function
    with psycopg.connect(roles.owner_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'readings'::regclass"
        ).fetchall()
    assert owners == [(roles.owner,)]


def test_grant_collector_command_grants_and_names_a_missing_role(
    roles: Roles, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate(roles.owner_url)
    monkeypatch.setenv("TALLY_DATABASE_URL", roles.owner_url)
    assert cli_main(["grant-collector", roles.collector]) == 0
    with psycopg.connect(roles.collector_url) as conn:
        assert conn.execute("SELECT count(*) FROM usage_dirty").fetchone() == (0,)
    assert cli_main(["grant-collector", "no_such_role_x"]) == 2
    assert "no_such_role_x" in capsys.readouterr().err


def test_a_role_without_the_grant_cannot_read_or_create_partitions(roles: Roles) -> None:
    migrate(roles.owner_url)
    with psycopg.connect(roles.collector_url) as conn, pytest.raises(
        psycopg.errors.InsufficientPrivilege
    ):
        conn.execute("SELECT tally_ensure_reading_partitions(now(), 1)")


def test_migrate_forced_to_timescale_without_it_preloaded_says_what_to_do(pg_url: str) -> None:
    """This server has no TimescaleDB in shared_preload_libraries: a clear error up front, no
    migration applied, and not the 'connection is closed' of the lock release."""
    with pytest.raises(MigrationError) as err:
        migrate(pg_url, use_timescale=True)
    assert "shared_preload_libraries" in str(err.value)
    assert "TALLY_DATABASE_TIMESCALE=no" in str(err.value)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM tally_schema_migrations").fetchone() == (0,)


def test_a_usage_refresh_that_keeps_failing_shows_in_health(
    roles: Roles, mqtt_url: str
) -> None:
    """The collector's role was never granted: every usage refresh fails. /health says so
    (503, the task, its error) and the metrics hook saw each failure, not only the log."""
    from fastapi.testclient import TestClient  # noqa: PLC0415

    from collector.api.app import create_app  # noqa: PLC0415
    from collector.config import load_config  # noqa: PLC0415
    from collector.runner import Collector  # noqa: PLC0415
    from collector.upkeep import TaskOutcome, UpkeepTracker  # noqa: PLC0415

    migrate(roles.owner_url)
    seen: list[TaskOutcome] = []
    config = load_config(None, {
        "TALLY_DATABASE_URL": roles.collector_url, "TALLY_MQTT_URL": mqtt_url,
        "TALLY_MQTT_CLIENT_ID": f"roles-{uuid.uuid4().hex[:8]}",
        "TALLY_INGEST_USAGE_REFRESH_S": "0.2",
    })
    pool = open_pool(roles.collector_url, name="roles-health")
    collector = Collector(config, pool, upkeep=UpkeepTracker(failing_after=2, hook=seen.append))
    collector.start()
    try:
        client = TestClient(create_app(pool, ingest_probe=collector.probe,
                                       upkeep=collector.upkeep))
        deadline = time.monotonic() + 60
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            r = client.get("/health")
            body = r.json()
            if any(t["task"] == "usage_refresh" and t["failing"] for t in body["upkeep"]):
                break
            time.sleep(0.5)
        assert r.status_code == 503, body
        assert body["status"] == "degraded"
        task = next(t for t in body["upkeep"] if t["task"] == "usage_refresh")
        assert task["consecutive_failures"] >= 2
        assert "permission denied" in task["last_error"]
        assert any("usage_refresh failing" in p for p in body["problems"])
        assert any(o.task == "usage_refresh" and not o.ok for o in seen)
    finally:
        collector.stop()
        pool.close()


def test_a_migration_that_loses_its_connection_reports_that_not_the_lock_release(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the session mid-migration (as a missing preload does): the error names
    the failing migration and the cause, not 'the connection is closed' from the unlock."""
    from collector.errors import CollectorError  # noqa: PLC0415
    from collector.storage import migrate as migrate_module  # noqa: PLC0415

    dying = migrate_module.Migration(
        1, "dies", None, "SELECT pg_terminate_backend(pg_backend_pid())")
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: [dying])
    with pytest.raises(CollectorError) as err:
        migrate(pg_url, use_timescale=False)
    text = str(err.value)
    assert "0001_dies" in text
    assert "terminat" in text
