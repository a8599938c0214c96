"""Database roles: granting the collector's least-privilege role (migration 0011)."""

from __future__ import annotations

import psycopg

from collector.errors import MigrationError, StorageUnavailable

__all__ = ["grant_collector"]


def grant_collector(dsn: str, role: str) -> None:
    """As the schema owner (``dsn``), grant ``role`` what the collector needs, no more."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT tally_grant_collector(%s::regrole)", (role,))
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(f"cannot connect to the database: {exc}") from exc
    except psycopg.Error as exc:
        raise MigrationError(f"granting the collector role {role!r} failed: {exc}") from exc
