"""Versioned SQL migrations, applied in order under an advisory lock.

Files in ``collector/storage/migrations`` are named ``NNNN_name.sql``. A migration may come in
two flavours, ``NNNN_name.timescale.sql`` and ``NNNN_name.plain.sql``: the first is applied when
the TimescaleDB extension is available in the database, the second otherwise. Both flavours must
leave the same tables and columns for the rest of the code. Each migration runs in its own
transaction and is recorded in ``tally_schema_migrations``; re-running is a no-op.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Final

import psycopg

from collector.errors import MigrationError, StorageUnavailable

_NAME_RE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
_LOCK_KEY: Final = 7_161_101  # arbitrary, constant advisory-lock key for migrations


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    flavour: str | None  # None, "timescale" or "plain"
    sql: str


def available_migrations() -> list[Migration]:
    """All migration files shipped in the package, sorted by version then flavour."""
    found: list[Migration] = []
    root = resources.files("collector.storage") / "migrations"
    for entry in root.iterdir():
        m = _NAME_RE.match(entry.name)
        if m:
            found.append(Migration(int(m[1]), m[2], m[3], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: (mig.version, mig.flavour or ""))
    return found


def timescale_available(conn: psycopg.Connection[object]) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def check_timescale_loadable(conn: psycopg.Connection[object]) -> None:
    """Fail with a clear message when TimescaleDB is installed on the server but would not load.

    ``CREATE EXTENSION timescaledb`` needs the library in ``shared_preload_libraries``; without
    it the server ends the session, which surfaced as an unrelated "the connection is closed".
    """
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return  # already created in this database: it loads
    cur = conn.cursor(row_factory=psycopg.rows.tuple_row)
    row = cur.execute("SELECT current_setting('shared_preload_libraries', true)").fetchone()
    preload = [p.strip().strip('"') for p in str((row[0] if row else "") or "").split(",")]
    if not any(p == "timescaledb" or p.endswith("/timescaledb") for p in preload):
        raise MigrationError(
            "the TimescaleDB extension is installed on the server but not preloaded: add "
            "shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL"
            " (see docs/operations.md), or choose the plain PostgreSQL schema with "
            "database.timescale = \"no\" (TALLY_DATABASE_TIMESCALE=no)"
        )


def _unlock(conn: psycopg.Connection[object]) -> None:
    """Release the migration lock; a lost connection released it already."""
    if conn.closed or conn.broken:
        return
    # the lock is session-scoped: closing the connection releases it anyway
    with contextlib.suppress(psycopg.Error):
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def migrate(dsn: str, *, use_timescale: bool | None = None) -> list[str]:
    """Apply pending migrations; return the names applied. ``use_timescale=None`` autodetects."""
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(f"cannot connect to the database: {exc}") from exc
    applied: list[str] = []
    with conn:
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        except psycopg.Error as exc:
            raise StorageUnavailable(f"cannot take the migration lock: {exc}") from exc
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS tally_schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, flavour text,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            if use_timescale is None:
                use_timescale = timescale_available(conn)
            if use_timescale:
                check_timescale_loadable(conn)
            done = {r[0] for r in conn.execute("SELECT version FROM tally_schema_migrations")}
            flavour = "timescale" if use_timescale else "plain"
            for mig in available_migrations():
                if mig.version in done or mig.flavour not in (None, flavour):
                    continue
                try:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        conn.execute(
                            "INSERT INTO tally_schema_migrations (version, name, flavour)"
                            " VALUES (%s, %s, %s)",
                            (mig.version, mig.name, mig.flavour),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name} failed: {exc}"
                    ) from exc
                done.add(mig.version)
                applied.append(f"{mig.version:04d}_{mig.name}")
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"migrate: database connection lost: {exc}") from exc
        except psycopg.Error as exc:
            raise MigrationError(f"migrate: {exc}") from exc
        finally:
            _unlock(conn)
    return applied
