"""Staff keys and the audit log in PostgreSQL (tables of ``0040_staff_access.sql``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import psycopg

from collector.access import AuditEntry, IssuedKey, Principal, Role, StaffKey
from collector.errors import UnknownKey
from collector.storage.database import translate_errors

__all__ = [
    "add_key",
    "any_keys",
    "list_audit",
    "list_keys",
    "principal_for_digest",
    "record_audit",
    "revoke_key",
]

Conn = psycopg.Connection[Any]
_KEY_COLS: Final = "key_id, name, role, created_at, created_by, expires_at, revoked_at"
_AUDIT_COLS: Final = "id, at, actor, role, method, path, status, client, target"


def _key(row: tuple[Any, ...]) -> StaffKey:
    return StaffKey(row[0], row[1], Role(row[2]), row[3], row[4], row[5], row[6])


def add_key(conn: Conn, issued: IssuedKey) -> StaffKey:
    """Store a newly issued key (its digest only)."""
    k = issued.key
    with translate_errors("create staff key"):
        conn.execute(
            "INSERT INTO staff_keys (key_id, key_sha256, name, role, created_at, created_by,"
            " expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (k.key_id, issued.digest, k.name, k.role.value, k.created_at, k.created_by,
             k.expires_at),
        )
    return k


def list_keys(conn: Conn, *, include_revoked: bool = False, limit: int = 1000) -> list[StaffKey]:
    """Keys, newest first."""
    where = "" if include_revoked else "WHERE revoked_at IS NULL"
    with translate_errors("list staff keys"):
        rows = conn.execute(
            f"SELECT {_KEY_COLS} FROM staff_keys {where} ORDER BY created_at DESC, key_id"  # noqa: S608 - fixed fragments
            " LIMIT %s",
            (limit,),
        ).fetchall()
    return [_key(r) for r in rows]


def revoke_key(conn: Conn, key_id: str, now: datetime) -> StaffKey:
    """Revoke a key at ``now`` (revoking twice keeps the first time); ``UnknownKey`` if absent."""
    with translate_errors("revoke staff key"):
        row = conn.execute(
            "UPDATE staff_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE key_id = %s"  # noqa: S608 - fixed column list
            f" RETURNING {_KEY_COLS}",
            (now, key_id),
        ).fetchone()
    if row is None:
        raise UnknownKey(f"no staff key {key_id!r}")
    return _key(row)


def principal_for_digest(conn: Conn, digest: bytes, now: datetime) -> Principal | None:
    """The principal of an active key with this digest, or ``None``."""
    with translate_errors("check staff key"):
        row = conn.execute(
            "SELECT key_id, role, expires_at FROM staff_keys WHERE key_sha256 = %s"
            " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)",
            (digest, now),
        ).fetchone()
    if row is None:
        return None
    return Principal(actor=f"key:{row[0]}", role=Role(row[1]), key_id=row[0], expires_at=row[2])


def principal_for_key_id(conn: Conn, key_id: str, now: datetime) -> Principal | None:
    """The principal of the active key ``key_id`` (a console session re-checks it on every
    page), or ``None`` once it is revoked or expired."""
    with translate_errors("check staff key"):
        row = conn.execute(
            "SELECT key_id, role, expires_at FROM staff_keys WHERE key_id = %s"
            " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)",
            (key_id, now),
        ).fetchone()
    if row is None:
        return None
    return Principal(actor=f"key:{row[0]}", role=Role(row[1]), key_id=row[0], expires_at=row[2])


def any_keys(conn: Conn) -> bool:
    """Whether a staff key was ever created (then the staff API always needs one)."""
    with translate_errors("check staff keys"):
        row = conn.execute("SELECT EXISTS (SELECT 1 FROM staff_keys)").fetchone()
    return bool(row and row[0])


def record_audit(conn: Conn, entry: AuditEntry) -> None:
    with translate_errors("write audit log"):
        conn.execute(
            "INSERT INTO audit_log (at, actor, role, method, path, status, outcome, client,"
            " target) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (entry.at, entry.actor, entry.role, entry.method, entry.path, entry.status,
             entry.outcome, entry.client, entry.target),
        )


def list_audit(
    conn: Conn,
    *,
    limit: int,
    before_id: int | None = None,
    actor: str | None = None,
    since: datetime | None = None,
) -> list[AuditEntry]:
    """Entries newest first, optionally of one actor and from ``since`` on."""
    with translate_errors("read audit log"):
        rows = conn.execute(
            f"SELECT {_AUDIT_COLS} FROM audit_log"  # noqa: S608 - fixed column list
            " WHERE (%(before)s::bigint IS NULL OR id < %(before)s)"
            " AND (%(actor)s::text IS NULL OR actor = %(actor)s)"
            " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"before": before_id, "actor": actor, "since": since, "limit": limit},
        ).fetchall()
    return [
        AuditEntry(at=r[1], actor=r[2], role=r[3], method=r[4], path=r[5], status=r[6],
                   client=r[7], target=r[8], id=r[0])
        for r in rows
    ]
