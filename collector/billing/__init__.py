"""Billing lifecycle: customers, subscriptions, period close into immutable invoices, corrections.

Pure domain (no I/O): ``model`` (value objects), ``periods`` (billing calendars in the customer's
time zone), ``money`` (rounding and invoice totals), ``numbering`` (invoice numbers),
``segments`` (subscriptions cut to a period, usage assigned to them), ``drafting`` (rated charges
into invoice lines), ``corrections`` (late data after finalize into adjustment lines).
Services with I/O: ``close`` (period close, refresh, finalize), ``documents`` (JSON/HTML/PDF/CSV),
``cli`` (staff commands). Storage lives in ``collector.storage.billing_*``.
"""

from collector.billing.model import (
    Address,
    Customer,
    CustomerSpec,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Lineage,
    LineKind,
    Plan,
    PlanVersion,
    Subscription,
)
from collector.billing.money import InvoiceTotals, compute_totals, minor_units, round_money
from collector.billing.numbering import format_invoice_number
from collector.billing.periods import BillingPeriod, PeriodKey, period_for

__all__ = [
    "Address",
    "BillingPeriod",
    "Customer",
    "CustomerSpec",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "InvoiceTotals",
    "LineKind",
    "Lineage",
    "PeriodKey",
    "Plan",
    "PlanVersion",
    "Subscription",
    "compute_totals",
    "format_invoice_number",
    "minor_units",
    "period_for",
    "round_money",
]
