"""Wallet consumption at finalize: for customers with ``auto_apply_wallet``, the credits usable
at the finalize instant pay each invoice as it becomes final, in the finalize transaction, in
the ledger's documented order (expiring first; ``collector.wallets.ledger``). Orchestrates
storage calls. An invoice is paid by credits at most once; with no usable credits nothing is
recorded (staff may still apply credits topped up later)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from collector.storage import wallets_auto_apply as auto
from collector.storage import wallets_store
from collector.wallets import ledger

Conn = psycopg.Connection[Any]


def apply_on_finalize(
    conn: Conn, invoice_ids: Sequence[int], at: datetime
) -> list[wallets_store.Application]:
    """Pay the just-finalized ``invoice_ids`` with credits where the customer opted in."""
    applied: list[wallets_store.Application] = []
    for invoice_id, customer_id in auto.auto_apply_invoices(conn, invoice_ids):
        w = wallets_store.get_wallet(conn, customer_id, lock=True)
        if ledger.available(w.top_ups, w.uses, at) <= Decimal(0):
            continue
        applied.append(wallets_store.apply_to_invoice(conn, invoice_id, at))
    return applied
