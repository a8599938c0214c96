"""Wallets in PostgreSQL: create, top up, read, and pay a final invoice with credits.

Functions take an open connection; the caller owns the transaction. Applying a wallet locks
the wallet row (``FOR UPDATE``) so two applications never spend the same credits; the choice
of top-ups is made by the pure ``collector.wallets.ledger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from collector.billing.money import minor_units
from collector.errors import Conflict, NotFound, ValidationFailed
from collector.storage.billing_errors import translated
from collector.wallets import ledger

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Wallet:
    """A customer's wallet with its top-ups and uses (uses newest last)."""

    wallet_id: int
    customer_id: int
    currency: str
    top_ups: tuple[ledger.TopUp, ...]
    uses: tuple[ledger.Use, ...]


@dataclass(frozen=True, slots=True)
class Application:
    """Credits that paid (part of) one final invoice."""

    invoice_id: int
    wallet_id: int
    invoice_total: Decimal
    applied: Decimal
    amount_due: Decimal
    allocations: tuple[ledger.Allocation, ...]
    expired: tuple[ledger.Allocation, ...]


def create_wallet(conn: Conn, customer_id: int) -> Wallet:
    """A new, empty wallet in the customer's currency (one per customer)."""
    with translated("create wallet"):
        row = conn.execute(
            "INSERT INTO wallets (customer_id, currency)"
            " SELECT customer_id, currency FROM customers WHERE customer_id = %s"
            " RETURNING wallet_id",
            (customer_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return get_wallet(conn, customer_id)


def _wallet_row(conn: Conn, customer_id: int, *, lock: bool) -> tuple[int, str]:
    query = "SELECT wallet_id, currency FROM wallets WHERE customer_id = %s"
    with translated("read wallet"):
        row = conn.execute(query + (" FOR UPDATE" if lock else ""), (customer_id,)).fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} has no wallet")
    return int(row[0]), str(row[1]).strip()


def get_wallet(conn: Conn, customer_id: int, *, lock: bool = False) -> Wallet:
    """The customer's wallet with every top-up and use."""
    wallet_id, currency = _wallet_row(conn, customer_id, lock=lock)
    with translated("read wallet"):
        tops = conn.execute(
            "SELECT top_up_id, credits, granted_at, expires_at FROM wallet_top_ups"
            " WHERE wallet_id = %s ORDER BY top_up_id",
            (wallet_id,),
        ).fetchall()
        uses = conn.execute(
            "SELECT u.top_up_id, u.amount FROM wallet_uses u"
            " JOIN wallet_top_ups t USING (top_up_id) WHERE t.wallet_id = %s ORDER BY u.use_id",
            (wallet_id,),
        ).fetchall()
    return Wallet(
        wallet_id,
        customer_id,
        currency,
        tuple(ledger.TopUp(int(r[0]), Decimal(r[1]), r[2], r[3]) for r in tops),
        tuple(ledger.Use(int(r[0]), Decimal(r[1])) for r in uses),
    )


def add_top_up(
    conn: Conn,
    customer_id: int,
    credits: Decimal,
    granted_at: datetime,
    *,
    expires_at: datetime | None = None,
    note: str = "",
) -> ledger.TopUp:
    """Add credits to the customer's wallet (exact to the currency's minor unit)."""
    wallet_id, currency = _wallet_row(conn, customer_id, lock=True)
    probe = ledger.TopUp(0, credits, granted_at, expires_at)  # validates before writing
    if credits != credits.quantize(Decimal(1).scaleb(-minor_units(currency))):
        raise ValidationFailed(f"credits {credits} are finer than the {currency} minor unit")
    with translated("top up wallet"):
        row = conn.execute(
            "INSERT INTO wallet_top_ups (wallet_id, credits, granted_at, expires_at, note)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING top_up_id",
            (wallet_id, credits, granted_at, expires_at, note),
        ).fetchone()
    assert row is not None
    return ledger.TopUp(int(row[0]), probe.credits, probe.granted_at, probe.expires_at)


def _book(
    conn: Conn, kind: str, invoice_id: int | None, allocs: Sequence[ledger.Allocation], at: datetime
) -> None:
    for a in allocs:
        conn.execute(
            "INSERT INTO wallet_uses (top_up_id, kind, invoice_id, amount, at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (a.top_up_id, kind, invoice_id, a.amount, at),
        )


def apply_to_invoice(conn: Conn, invoice_id: int, at: datetime) -> Application:
    """Pay a final invoice with the customer's credits usable at ``at`` (expired credits are
    booked as expiry first). Once per invoice; a second application is a ``Conflict``."""
    with translated("read invoice"):
        inv = conn.execute(
            "SELECT customer_id, status, currency, total FROM invoices WHERE invoice_id = %s",
            (invoice_id,),
        ).fetchone()
    if inv is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    customer_id, status, currency, total = int(inv[0]), inv[1], str(inv[2]).strip(), Decimal(inv[3])
    if status != "final":
        raise Conflict(f"invoice {invoice_id} is a draft: credits pay final invoices only")
    wallet = get_wallet(conn, customer_id, lock=True)
    if wallet.currency != currency:
        raise Conflict(f"wallet in {wallet.currency}, invoice in {currency}")
    expired = ledger.expire(wallet.top_ups, wallet.uses, at)
    _book(conn, "expiry", None, expired, at)
    uses = [*wallet.uses, *(ledger.Use(a.top_up_id, a.amount) for a in expired)]
    allocs = ledger.consume(wallet.top_ups, uses, max(total, Decimal(0)), at)
    exact = Decimal(1).scaleb(-minor_units(currency))
    applied = sum((a.amount for a in allocs), Decimal(0)).quantize(exact)
    with translated("apply wallet"):
        conn.execute(
            "INSERT INTO wallet_applications (invoice_id, wallet_id, amount, applied_at)"
            " VALUES (%s, %s, %s, %s)",
            (invoice_id, wallet.wallet_id, applied, at),
        )
        _book(conn, "invoice", invoice_id, allocs, at)
    due = (total - applied).quantize(exact)
    return Application(
        invoice_id, wallet.wallet_id, total, applied, due, tuple(allocs), tuple(expired)
    )
