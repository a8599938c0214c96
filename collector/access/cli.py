"""``tally-collector keys create|list|revoke``: staff keys from the command line.

Each change is recorded in the audit log (actor ``cli``) in the same transaction. A key made
here is printed once; only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from collector.access.audit import AuditEntry
from collector.access.keys import StaffKey, issue_key
from collector.access.roles import Role

if TYPE_CHECKING:
    from collector.cli import Command
    from collector.config import CollectorConfig

__all__ = ["commands"]


def _audit(action: str, status: int, target: str, now: datetime) -> AuditEntry:
    return AuditEntry(at=now, actor="cli", role=None, method="CLI", path=f"keys {action}",
                      status=status, target=target)


def _line(k: StaffKey) -> str:
    expires = k.expires_at.isoformat() if k.expires_at else "never"
    state = f"revoked {k.revoked_at.isoformat()}" if k.revoked_at else f"expires {expires}"
    return f"{k.key_id}  {k.role.value:<10}  {state:<40}  {k.name}"


def _run(args: argparse.Namespace, config: CollectorConfig) -> int:
    from collector.storage import access_store  # noqa: PLC0415 - keep --help fast
    from collector.storage.database import open_pool, translate_errors  # noqa: PLC0415

    now = datetime.now(UTC)
    pool = open_pool(config.database.url, min_size=1, max_size=1)
    try:
        with translate_errors("keys"), pool.connection() as conn, conn.transaction():
            if args.keys_command == "create":
                expires = now + timedelta(days=args.expires_in_days) if args.expires_in_days \
                    else None
                issued = issue_key(role=Role(args.role), name=args.name, now=now,
                                   created_by="cli", expires_at=expires)
                access_store.add_key(conn, issued)
                access_store.record_audit(conn, _audit("create", 201,
                                                       f"key:{issued.key.key_id}", now))
                print(f"key (give it to {issued.key.name}; shown once): {issued.secret}")
                print(_line(issued.key))
            elif args.keys_command == "list":
                for k in access_store.list_keys(conn, include_revoked=args.all):
                    print(_line(k))
            else:
                k = access_store.revoke_key(conn, args.key_id, now)
                access_store.record_audit(conn, _audit("revoke", 200, f"key:{k.key_id}", now))
                print(f"revoked {_line(k)}")
    finally:
        pool.close()
    return 0


def _configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    c = sub.add_parser("create", help="make a staff key (printed once)")
    c.add_argument("--name", required=True, help="who or what the key is for")
    c.add_argument("--role", required=True, choices=[r.value for r in Role])
    c.add_argument("--expires-in-days", type=float, default=None,
                   help="the key stops working after this many days (default: never)")
    lst = sub.add_parser("list", help="list staff keys (never the keys themselves)")
    lst.add_argument("--all", action="store_true", help="include revoked keys")
    r = sub.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")


def commands() -> Sequence[Command]:
    from collector.cli import Command  # noqa: PLC0415 - collector.cli imports this module

    return [Command("keys", "create, list and revoke staff API keys with roles", _run,
                    _configure)]


