"""The chaos run's last check: bill every meter and compare the invoices with the registers.

Each chaos meter gets a customer (UTC) on a per-unit plan; the month its values are stamped in
(December 2025) is closed twice (the second close must change nothing) and finalized. Each
meter's usage line must hold exactly what its register says (last stored value - first), and no
subscription may sit on two invoices for overlapping periods (``reconcile`` counts those as
double-billed too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.model import Address, CustomerSpec
from collector.billing.money import round_money
from collector.billing.periods import PeriodKey
from collector.storage.database import open_pool
from tests.faults.meter_agent import T_BASE_MS

_PERIOD = PeriodKey(2025, 12)  # T_BASE_MS: value n of a meter is stamped 2025-12-01 + n s
_START, _END = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
_PRICE = Decimal("0.25")
_PLAN = {
    "format": "tally.plan/v1", "id": "chaos", "version": 1, "currency": "EUR",
    "charges": [{"type": "per_unit", "id": "energy", "unit": "kWh", "price": str(_PRICE)}],
}


@dataclass(frozen=True, slots=True)
class Billing:
    meters: int
    billed_units: Decimal  # sum of the usage lines, all meters
    mismatches: int  # meters whose usage lines differ from their register
    double_billed: int  # usage lines of one subscription on overlapping invoices
    notes: tuple[str, ...]


def _wait_derived(conn: psycopg.Connection, series: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = conn.execute("SELECT count(*) FROM usage_dirty WHERE series_id = ANY(%s)",
                           (series,)).fetchone()
        if row is not None and int(row[0]) == 0:
            return
        time.sleep(0.2)


def bill_and_compare(db: str, series: list[int], now: datetime) -> Billing:
    """Close and finalize December 2025 for one customer per series, then compare."""
    if int(_START.timestamp() * 1000) != T_BASE_MS:
        raise AssertionError("the meters' base time moved: move _PERIOD with it")
    with psycopg.connect(db, autocommit=True) as conn:
        _wait_derived(conn, series, 60.0)
        _, version = accounts.create_plan(conn, "chaos", "Chaos", _PLAN)
        for i, sid in enumerate(series):
            c = accounts.create_customer(conn, CustomerSpec(
                name=f"Chaos {i}", address=Address("Main St 1", "Utrecht", "NL", "3511 AA"),
                currency="EUR", time_zone="UTC", tax_rate=Decimal("0.21")))
            accounts.assign_meter(conn, c.customer_id, sid, version.plan_version_id,
                                  datetime(2025, 11, 1, tzinfo=UTC))
    pool = open_pool(db, min_size=1, max_size=2)
    try:
        close_period(pool, _PERIOD, now)
        close_period(pool, _PERIOD, now)  # a second close changes nothing
        finalize_period(pool, _PERIOD, now + timedelta(seconds=1))
    finally:
        pool.close()
    notes: list[str] = []
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT sub.series_id, coalesce(sum(l.quantity), 0), count(DISTINCT l.invoice_id),"
            " coalesce(sum(l.amount), 0),"
            " (SELECT max(value) - min(value) FROM readings r WHERE r.series_id = sub.series_id"
            "  AND r.ts < %s)"  # a register that runs into January: its December part
            " FROM subscriptions sub LEFT JOIN invoice_lines l"
            " ON l.subscription_id = sub.subscription_id AND l.kind = 'usage'"
            " WHERE sub.series_id = ANY(%s) GROUP BY sub.series_id", (_END, series)).fetchall()
        twice = conn.execute(
            "SELECT count(*) FROM invoice_lines l1 JOIN invoices i1 USING (invoice_id)"
            " JOIN invoice_lines l2 ON l2.subscription_id = l1.subscription_id"
            "  AND l2.invoice_id <> l1.invoice_id AND l2.kind = 'usage'"
            " JOIN invoices i2 ON i2.invoice_id = l2.invoice_id"
            "  AND i2.period_start < i1.period_end AND i1.period_start < i2.period_end"
            " JOIN subscriptions s ON s.subscription_id = l1.subscription_id"
            " WHERE l1.kind = 'usage' AND s.series_id = ANY(%s)", (series,)).fetchone()
    mismatches = 0
    billed = Decimal(0)
    for sid, quantity, invoices, amount, register in rows:
        billed += Decimal(quantity)
        expected = Decimal(str(register or 0))
        if abs(Decimal(quantity) - expected) > Decimal("0.000001") or invoices != 1 \
                or amount != round_money(Decimal(quantity) * _PRICE, "EUR"):
            mismatches += 1
            notes.append(f"series {sid}: billed {quantity} kWh for {amount} on {invoices}"
                         f" invoice(s); the register says {expected} kWh")
    double = int(twice[0]) if twice is not None else 0
    return Billing(len(rows), billed, mismatches, double, tuple(notes))
