"""Optional touch of the demo: bill the simulated energy meters and show the draft invoice.

One customer ("Demo Household", EUR, UTC) on the flat energy plan from
``collector/rating/examples/per_unit.yaml``; every demo device's energy meter is assigned to it
from the start of the current month as soon as its series exists. ``tick`` derives usage from the
new readings, (re)drafts the current period's invoices and returns the customer's draft total.
Everything is idempotent, so a restarted demo on the same database carries on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from collector.billing import accounts
from collector.billing.close import close_period, refresh_period
from collector.billing.model import Address, CustomerSpec
from collector.billing.parties import Issuer
from collector.billing.periods import PeriodKey
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_issuer_store as issuers
from collector.storage import billing_store as store
from collector.storage.database import Pool
from collector.storage.usage_queries import find_series
from collector.storage.usage_store import refresh_usage

__all__ = ["CUSTOMER_NAME", "DemoBilling"]

CUSTOMER_NAME = "Demo Household"
PLAN_CODE = "demo-flat-energy"
PLAN_FILE = Path(__file__).resolve().parent / "rating" / "examples" / "per_unit.yaml"
ENERGY = ("energy", "energy_import")  # (meter, metric) of the demo agents' energy source


def _plan_document() -> dict[str, Any]:
    doc = yaml.safe_load(PLAN_FILE.read_text(encoding="utf-8"))
    return dict(json.loads(json.dumps(doc, default=str)))


# The seller on demo invoices (an example VAT id and the IBAN of the ISO 13616 example).
DEMO_ISSUER = Issuer(
    code="default",
    name="Tally Demo B.V.",
    address=Address("1 Demo Street", "Amsterdam", "NL", "1000 AA"),
    vat_id="NL000099998B57",
    iban="NL91ABNA0417164300",
    payment_terms_days=14,
)


class DemoBilling:
    """The demo customer, plan and subscriptions, and the current draft invoice."""

    def __init__(self, pool: Pool, devices: Sequence[str]) -> None:
        self._pool = pool
        self._devices = list(devices)
        self._customer_id: int | None = None
        self._plan_version_id: int | None = None
        self._assigned: set[str] = set()
        self._closed: set[str] = set()

    def setup(self) -> None:
        """Find or create the customer and the plan."""
        with self._pool.connection() as conn, conn.transaction():
            found = [c for c in store.list_customers(conn, name_contains=CUSTOMER_NAME).items
                     if c.spec.name == CUSTOMER_NAME]
            if found:
                self._customer_id = found[0].customer_id
            else:
                self._customer_id = accounts.create_customer(conn, CustomerSpec(
                    name=CUSTOMER_NAME, address=Address("1 Demo Street", "Amsterdam", "NL"),
                    currency="EUR", time_zone="UTC", tax_rate=Decimal("0.21"),
                    invoice_prefix="DEMO",
                )).customer_id
            if not [i for i in issuers.list_issuers(conn) if i.code == DEMO_ISSUER.code]:
                issuers.put_issuer(conn, DEMO_ISSUER)
            plans = [p for p in store.list_plans(conn).items if p.code == PLAN_CODE]
            if plans:
                self._plan_version_id = store.list_plan_versions(
                    conn, plans[0].plan_id)[-1].plan_version_id
            else:
                _, version = accounts.create_plan(conn, PLAN_CODE, "", _plan_document())
                self._plan_version_id = version.plan_version_id

    def _assign_new_meters(self, period_start: datetime) -> None:
        if self._customer_id is None or self._plan_version_id is None:
            self.setup()
        customer_id, plan_version_id = self._customer_id, self._plan_version_id
        if customer_id is None or plan_version_id is None:  # pragma: no cover - setup sets both
            return
        for device in self._devices:
            if device in self._assigned:
                continue
            with self._pool.connection() as conn, conn.transaction():
                info = find_series(conn, device, *ENERGY)
                if info is None:
                    continue
                subs = store.list_subscriptions(conn, series_id=info.series_id).items
                if not subs:
                    accounts.assign_meter(conn, customer_id, info.series_id, plan_version_id,
                                          period_start)
            self._assigned.add(device)

    def tick(self, now: datetime) -> str:
        """Derive usage, re-draft this month's invoices; the line the demo shows."""
        key = PeriodKey(now.year, now.month)
        self._assign_new_meters(datetime(now.year, now.month, 1, tzinfo=UTC))
        for _ in range(20):
            with self._pool.connection() as conn:
                report = refresh_usage(conn, now)
            if report.busy or report.dirty_rows == 0:
                break
        if str(key) in self._closed:
            refresh_period(self._pool, key, now)
        else:
            close_period(self._pool, key, now)
            self._closed.add(str(key))
        with self._pool.connection() as conn:
            mine = invoices.list_invoices(conn, customer_id=self._customer_id,
                                          period=str(key)).items
            inv = invoices.get_invoice(conn, mine[-1].invoice_id) if mine else None
        if inv is None:
            return f"draft invoice for {CUSTOMER_NAME} ({key}): none yet"
        kwh = sum((line.quantity for line in inv.lines if line.unit == "kWh"), Decimal(0))
        return (f"{inv.status.value} invoice for {CUSTOMER_NAME} ({key}): "
                f"{kwh.quantize(Decimal('0.001'))} kWh on "
                f"{len(self._assigned)} meters, total {inv.total} {inv.currency} incl. tax")
