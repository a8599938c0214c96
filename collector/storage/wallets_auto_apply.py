"""The per-customer ``auto_apply_wallet`` option (migration 0073) and what credits paid an
invoice. Functions take an open connection; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg

from collector.errors import NotFound
from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]


def set_auto_apply(conn: Conn, customer_id: int, on: bool) -> bool:
    """Turn the option on or off; NotFound if the customer has no wallet."""
    with translated("set wallet auto-apply"):
        row = conn.execute(
            "UPDATE wallets SET auto_apply_wallet = %s WHERE customer_id = %s"
            " RETURNING auto_apply_wallet",
            (on, customer_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} has no wallet")
    return bool(row[0])


def auto_apply(conn: Conn, customer_id: int) -> bool:
    with translated("read wallet auto-apply"):
        row = conn.execute(
            "SELECT auto_apply_wallet FROM wallets WHERE customer_id = %s", (customer_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} has no wallet")
    return bool(row[0])


def auto_apply_invoices(conn: Conn, invoice_ids: Sequence[int]) -> list[tuple[int, int]]:
    """``(invoice_id, customer_id)`` of the final invoices among ``invoice_ids`` with a positive
    total, not paid by credits yet, whose customer's wallet (in the invoice's currency)
    auto-applies; customer order."""
    if not invoice_ids:
        return []
    with translated("find invoices to pay with credits"):
        rows = conn.execute(
            "SELECT i.invoice_id, i.customer_id FROM invoices i"
            " JOIN wallets w ON w.customer_id = i.customer_id AND w.auto_apply_wallet"
            " AND w.currency = i.currency"
            " WHERE i.invoice_id = ANY(%s) AND i.status = 'final' AND i.total > 0"
            " AND NOT EXISTS (SELECT 1 FROM wallet_applications a"
            "  WHERE a.invoice_id = i.invoice_id)"
            " ORDER BY i.customer_id, i.invoice_id",
            (list(invoice_ids),),
        ).fetchall()
    return [(int(r[0]), int(r[1])) for r in rows]


def credits_applied(conn: Conn, invoice_id: int) -> Decimal | None:
    """Credits that paid the invoice, or None if no wallet was applied to it."""
    with translated("read wallet application"):
        row = conn.execute(
            "SELECT amount FROM wallet_applications WHERE invoice_id = %s", (invoice_id,)
        ).fetchone()
    return None if row is None else Decimal(row[0])
