"""Finalizing one invoice or checking a period before its finalize run, behind the finalize
guard (``finalize_guard``): nothing becomes final before its period end + grace window unless
forced with a reason, which is recorded on the invoice. Orchestrates storage calls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from collector.billing.finalize_guard import ForceReason, check_ready
from collector.billing.model import Invoice
from collector.billing.periods import PeriodKey, period_for
from collector.billing.wallet_on_finalize import apply_on_finalize
from collector.errors import Conflict
from collector.storage import billing_invoice_store as invoices

Conn = psycopg.Connection[Any]

# The zone whose months end first (UTC+14): no customer's period ``key`` ends before this.
_EARLIEST_ZONE = "Pacific/Kiritimati"


def finalize_one(
    conn: Conn,
    invoice_id: int,
    now: datetime,
    *,
    grace: timedelta,
    forced: ForceReason | None = None,
) -> Invoice:
    """Finalize draft ``invoice_id`` in the caller's transaction (NotReady before its period
    end + ``grace`` unless ``forced``; Conflict if final already)."""
    current = invoices.get_invoice(conn, invoice_id, with_lines=False)
    if current.number is not None:
        raise Conflict(f"invoice {invoice_id} is already final as {current.number}")
    check_ready(
        f"invoice {invoice_id} (period {current.period})",
        current.period_end,
        now,
        grace,
        forced,
    )
    final = invoices.finalize_invoice(
        conn,
        invoice_id,
        now,
        period_end_before=now - grace,
        forced_reason=None if forced is None else forced.text,
    )
    apply_on_finalize(conn, [invoice_id], now)  # customers with auto_apply_wallet
    return final


def check_period(
    conn: Conn, key: PeriodKey, now: datetime, *, grace: timedelta, forced: ForceReason | None
) -> None:
    """Refuse (NotReady) a finalize of ``key`` while the period, or any of its drafts, has not
    ended plus ``grace`` (unless forced). Checked before a finalize run starts."""
    if forced is not None:
        return
    earliest = period_for(key, _EARLIEST_ZONE).end
    check_ready(f"period {key}", earliest, now, grace, None)
    count, latest = invoices.unready_drafts(conn, str(key), now - grace)
    if count:
        check_ready(f"period {key} ({count} drafts not ready)", latest, now, grace, None)
