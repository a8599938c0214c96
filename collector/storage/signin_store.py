"""Sign-in codes and browser sessions (tables ``signin_codes``, ``web_sessions``); only
digests of the secrets are stored (``collector.signin.model.digest``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from collector.errors import NotFound
from collector.signin.model import Audience, Session, digest
from collector.storage.billing_errors import translated

__all__ = [
    "add_code",
    "create_session",
    "redeem_code",
    "revoke_customer_sessions",
    "revoke_session",
    "session_for",
]

Conn = psycopg.Connection[Any]


def add_code(conn: Conn, customer_id: int, code: str, now: datetime, expires: datetime) -> None:
    """Store (the digest of) a new one-time sign-in code."""
    with translated("create sign-in code"):
        conn.execute(
            "INSERT INTO signin_codes (code_sha256, customer_id, created_at, expires_at)"
            " VALUES (%s, %s, %s, %s)",
            (digest(code), customer_id, now, expires),
        )


def redeem_code(conn: Conn, code: str, now: datetime) -> int:
    """Use a code once: the customer it was made for; NotFound if unknown, used or expired
    (one atomic UPDATE, so two browsers racing with one code cannot both win)."""
    with translated("redeem sign-in code"):
        row = conn.execute(
            "UPDATE signin_codes SET used_at = %s WHERE code_sha256 = %s AND used_at IS NULL"
            " AND expires_at > %s RETURNING customer_id",
            (now, digest(code), now),
        ).fetchone()
    if row is None:
        raise NotFound("unknown, used or expired sign-in code")
    return int(row[0])


KEEP_ENDED = timedelta(days=7)  # ended sessions and codes are kept this long, then purged


def create_session(conn: Conn, session_id: str, s: Session) -> None:
    """Store a new session under the digest of ``session_id`` (and purge sessions and codes
    that expired more than ``KEEP_ENDED`` ago, so the tables stay small)."""
    with translated("create session"):
        conn.execute("DELETE FROM web_sessions WHERE expires_at < %s", (s.created_at - KEEP_ENDED,))
        conn.execute("DELETE FROM signin_codes WHERE expires_at < %s", (s.created_at - KEEP_ENDED,))
        conn.execute(
            "INSERT INTO web_sessions (session_sha256, audience, customer_id, staff, csrf_token,"
            " created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                digest(session_id),
                s.audience.value,
                s.customer_id,
                s.staff,
                s.csrf,
                s.created_at,
                s.expires_at,
            ),
        )


def session_for(conn: Conn, session_id: str, audience: Audience, now: datetime) -> Session:
    """The live session with this id; NotFound if unknown, expired, revoked or for another
    audience."""
    with translated("check session"):
        row = conn.execute(
            "SELECT customer_id, staff, csrf_token, created_at, expires_at FROM web_sessions"
            " WHERE session_sha256 = %s AND audience = %s AND revoked_at IS NULL"
            " AND expires_at > %s AND created_at <= %s",
            (digest(session_id), audience.value, now, now),
        ).fetchone()
    if row is None:
        raise NotFound("unknown, expired or revoked session")
    return Session(audience, row[0], row[1], row[2], row[3], row[4])


def revoke_session(conn: Conn, session_id: str, now: datetime) -> None:
    """End one session (sign out)."""
    with translated("end session"):
        conn.execute(
            "UPDATE web_sessions SET revoked_at = %s WHERE session_sha256 = %s"
            " AND revoked_at IS NULL",
            (now, digest(session_id)),
        )


def revoke_customer_sessions(conn: Conn, customer_id: int, now: datetime) -> int:
    """End every session of a customer and void its unused codes; how many sessions were
    not yet ended (expired ones included)."""
    with translated("revoke customer sessions"):
        cur = conn.execute(
            "UPDATE web_sessions SET revoked_at = %s WHERE customer_id = %s AND revoked_at IS NULL",
            (now, customer_id),
        )
        conn.execute(
            "UPDATE signin_codes SET used_at = %s WHERE customer_id = %s AND used_at IS NULL",
            (now, customer_id),
        )
    return max(cur.rowcount, 0)
