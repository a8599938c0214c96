"""Customer-portal access tokens (hashed at rest)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import psycopg

from collector.errors import NotFound
from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def add_token(conn: Conn, customer_id: int, token: str) -> None:
    """Store (the hash of) a new portal token for ``customer_id``."""
    with translated("create portal token"):
        conn.execute(
            "INSERT INTO portal_tokens (token_sha256, customer_id) VALUES (%s, %s)",
            (_digest(token), customer_id),
        )


def customer_for_token(conn: Conn, token: str) -> int:
    """The customer a valid (not revoked) token belongs to; NotFound otherwise."""
    with translated("check portal token"):
        row = conn.execute(
            "SELECT customer_id FROM portal_tokens WHERE token_sha256 = %s AND revoked_at IS NULL",
            (_digest(token),),
        ).fetchone()
    if row is None:
        raise NotFound("unknown or revoked portal token")
    return int(row[0])


def revoke_tokens(conn: Conn, customer_id: int, now: datetime) -> int:
    """Revoke every token of a customer; returns how many were active."""
    with translated("revoke portal tokens"):
        cur = conn.execute(
            "UPDATE portal_tokens SET revoked_at = %s WHERE customer_id = %s"
            " AND revoked_at IS NULL",
            (now, customer_id),
        )
    return max(cur.rowcount, 0)
