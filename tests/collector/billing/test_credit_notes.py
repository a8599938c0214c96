"""Credit notes: late data that lowers a finalized period is credited by a separately and
gaplessly numbered credit note referring to the invoice it corrects, issued by the finalize
run, immutable, never issued twice, and exported as PDF, UBL CreditNote and CII 381."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api import billing_routes
from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.credit_notes import CreditedInvoice, credit_note_drafts
from collector.billing.drafting import CorrectionLine
from collector.billing.periods import PeriodKey
from collector.storage import billing_credit_note_store as notes
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_issuer_store as issuers
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc
from tests.collector.billing.einvoice_checks import (
    CII_RULES,
    UBL_RULES,
    check_xsd,
    rule_failures,
)
from tests.collector.billing.legal_fixtures import ISSUER

D = Decimal
Pool = psycopg_pool.ConnectionPool[Any]
Conn = psycopg.Connection[Any]
MARCH, APRIL, MAY = PeriodKey(2026, 3), PeriodKey(2026, 4), PeriodKey(2026, 5)


def _march_final(conn: Conn, pool: Pool) -> tuple[int, int, int]:
    """A customer billed 1 kWh per quarter hour on 1 March, March finalized: (cid, sid, inv)."""
    issuers.put_issuer(conn, ISSUER)
    c = accounts.create_customer(conn, spec())
    _, v = accounts.create_plan(conn, f"p{c.customer_id}", "Basic", plan_doc())
    sid = make_series(conn, f"dev-{c.customer_id}")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 2), 1.0)
    close_period(pool, MARCH, utc(2026, 4, 5))
    finalize_period(pool, MARCH, utc(2026, 4, 5))
    inv = invoices.list_invoices(conn, customer_id=c.customer_id, period="2026-03").items[0]
    return c.customer_id, sid, inv.invoice_id


def _lower(conn: Conn, sid: int, hour: int, when: Any) -> None:
    """One March quarter hour corrected from 1 kWh to 0 after March was finalized."""
    put_usage(conn, sid, utc(2026, 3, 1, hour), utc(2026, 3, 1, hour, 15), 0.0, updated_at=when)


def test_lower_late_data_is_credited_by_a_numbered_credit_note(conn: Conn, pool: Pool) -> None:
    """1 kWh less: CN-2026-000001 credits 0.25 + 21 % VAT (0.05) on the March invoice; the
    invoice series is untouched (April is INV-2026-000002)."""
    cid, sid, march_id = _march_final(conn, pool)
    _lower(conn, sid, 12, utc(2026, 4, 20))
    close_period(pool, APRIL, utc(2026, 5, 5))
    finalize_period(pool, APRIL, utc(2026, 5, 5))
    found = notes.list_for_invoice(conn, march_id)
    assert [(n.number, n.subtotal, n.tax, n.total) for n in found] == [
        ("CN-2026-000001", D("0.25"), D("0.05"), D("0.30"))
    ]
    cn = notes.get_credit_note(conn, found[0].credit_note_id)
    assert cn.lines[0].lineage.corrects_invoice_number == "INV-2026-000001"
    april = invoices.list_invoices(conn, customer_id=cid, period="2026-04").items[0]
    assert april.number == "INV-2026-000002"


def test_a_credit_is_never_issued_twice_and_numbers_stay_gapless(conn: Conn, pool: Pool) -> None:
    """Finalizing again issues nothing; a second lowering later gets CN-2026-000002."""
    _, sid, march_id = _march_final(conn, pool)
    _lower(conn, sid, 12, utc(2026, 4, 20))
    close_period(pool, APRIL, utc(2026, 5, 5))
    finalize_period(pool, APRIL, utc(2026, 5, 5))
    finalize_period(pool, APRIL, utc(2026, 5, 6))
    assert len(notes.list_for_invoice(conn, march_id)) == 1
    _lower(conn, sid, 13, utc(2026, 5, 20))
    close_period(pool, MAY, utc(2026, 6, 5))
    finalize_period(pool, MAY, utc(2026, 6, 5))
    numbers = [n.number for n in notes.list_for_invoice(conn, march_id)]
    assert numbers == ["CN-2026-000001", "CN-2026-000002"]
    close_period(pool, PeriodKey(2026, 6), utc(2026, 7, 5))
    finalize_period(pool, PeriodKey(2026, 6), utc(2026, 7, 5))
    assert len(notes.list_for_invoice(conn, march_id)) == 2


def test_credit_notes_are_immutable(conn: Conn, pool: Pool) -> None:
    """The database rejects changing or deleting an issued credit note."""
    _, sid, march_id = _march_final(conn, pool)
    _lower(conn, sid, 12, utc(2026, 4, 20))
    close_period(pool, APRIL, utc(2026, 5, 5))
    finalize_period(pool, APRIL, utc(2026, 5, 5))
    cn_id = notes.list_for_invoice(conn, march_id)[0].credit_note_id
    with pytest.raises(psycopg.Error, match="cannot be changed"):
        conn.execute("UPDATE credit_notes SET total = 0 WHERE credit_note_id = %s", (cn_id,))
    with pytest.raises(psycopg.Error, match="cannot be changed"):
        conn.execute("DELETE FROM credit_note_lines WHERE credit_note_id = %s", (cn_id,))


@pytest.fixture
def client(pool: Pool) -> Iterator[TestClient]:
    """A test client of the collector app with the billing router."""
    app = create_app(pool)
    app.include_router(billing_routes.router)
    with TestClient(app) as c:
        yield c


def test_credit_note_documents(client: TestClient, conn: Conn, pool: Pool) -> None:
    """JSON refers to the invoice; UBL CreditNote and CII 381 pass their schemas and the EN
    16931 rules with positive amounts; the PDF and Factur-X render."""
    _, sid, march_id = _march_final(conn, pool)
    _lower(conn, sid, 12, utc(2026, 4, 20))
    close_period(pool, APRIL, utc(2026, 5, 5))
    finalize_period(pool, APRIL, utc(2026, 5, 5))
    listed = client.get(f"/invoices/{march_id}/credit-notes").json()["items"]
    url = f"/invoices/{march_id}/credit-notes/{listed[0]['credit_note_id']}"
    doc = client.get(url).json()
    assert doc["corrects"]["number"] == "INV-2026-000001"
    assert doc["total"] == "0.30"
    ubl = client.get(url, params={"format": "ubl"}).content
    check_xsd(ubl, "ubl-2.1-creditnote")
    assert rule_failures(ubl, UBL_RULES) == []
    assert b"<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>" in ubl
    assert b"<cbc:ID>INV-2026-000001</cbc:ID>" in ubl  # BillingReference
    cii = client.get(url, params={"format": "cii"}).content
    check_xsd(cii, "factur-x")
    assert rule_failures(cii, CII_RULES) == []
    assert b"<ram:TypeCode>381</ram:TypeCode>" in cii
    assert client.get(url, params={"format": "pdf"}).content.startswith(b"%PDF")
    assert client.get(url, params={"format": "facturx"}).status_code == 200
    other = client.get(f"/invoices/{march_id + 1000}/credit-notes/{listed[0]['credit_note_id']}")
    assert other.status_code == 404


def test_credit_note_drafts_take_only_lowering_corrections() -> None:
    """Raising corrections stay on the next invoice; lowering ones become one credit note per
    corrected invoice at that invoice's tax rate, rounded by the invoice rule."""
    from collector.billing.model import Customer  # noqa: PLC0415

    def corr(sub: int, amount: str) -> CorrectionLine:
        return CorrectionLine(sub, 11, 42, "INV-2026-000042", "2026-03", D(amount), (1,), "m")

    customer = Customer(7, spec(), utc(2026, 1, 1))
    credited = {42: CreditedInvoice(42, "INV-2026-000042", "2026-03", "tally-nl", "EUR", D("0.09"))}
    drafts = credit_note_drafts(
        {7: [corr(1, "-40.005"), corr(2, "5"), corr(3, "-0.004")]}, {7: customer}, credited
    )
    assert len(drafts) == 1
    d = drafts[0]
    assert [ln.amount for ln in d.lines] == [D("40.01"), D("0.00")]
    assert (d.subtotal, d.tax, d.total) == (D("40.01"), D("3.60"), D("43.61"))
