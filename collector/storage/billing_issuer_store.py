"""Issuers (the sellers on invoices) in PostgreSQL, and the issuer snapshot of an invoice."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from collector.billing.parties import Issuer
from collector.errors import NotFound
from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]

def put_issuer(conn: Conn, issuer: Issuer) -> Issuer:
    """Create or replace the issuer ``issuer.code``. Final invoices keep their snapshot."""
    with translated("put issuer"):
        conn.execute(
            "INSERT INTO issuers (code, document) VALUES (%s, %s) ON CONFLICT (code) DO UPDATE"
            " SET document = EXCLUDED.document, updated_at = now()",
            (issuer.code, Jsonb(issuer.to_json())),
        )
    return issuer


def get_issuer(conn: Conn, code: str) -> Issuer:
    with translated("get issuer"):
        row = conn.execute("SELECT document FROM issuers WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise NotFound(f"issuer {code!r} is not configured")
    return Issuer.from_json(row[0])


def list_issuers(conn: Conn) -> list[Issuer]:
    with translated("list issuers"):
        rows = conn.execute("SELECT document FROM issuers ORDER BY code").fetchall()
    return [Issuer.from_json(r[0]) for r in rows]


def invoice_issuer(conn: Conn, invoice_id: int) -> Issuer | None:
    """The issuer as snapshotted on the invoice (None when it was not configured then)."""
    with translated("get invoice issuer"):
        row = conn.execute(
            "SELECT issuer_snapshot FROM invoices WHERE invoice_id = %s", (invoice_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    return None if row[0] is None else Issuer.from_json(row[0])
