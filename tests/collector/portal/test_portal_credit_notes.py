"""Portal invoice page: the credit notes correcting a final invoice, with PDF and e-invoice
downloads through the portal's own routes, for the invoice's customer only."""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg_pool
from fastapi.testclient import TestClient

from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from collector.storage import billing_credit_note_store as notes
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_issuer_store as issuers
from tests.collector.billing.conftest import plan_doc, put_usage, utc
from tests.collector.billing.legal_fixtures import ISSUER
from tests.collector.portal.conftest import Account, make_account, make_meter

HTML = {"Accept": "text/html"}
Pool = psycopg_pool.ConnectionPool[Any]
Conn = psycopg.Connection[Any]


def _credited(conn: Conn, pool: Pool) -> tuple[Account, int, int]:
    """March finalized, then one quarter hour lowered and April finalized: a credit note on the
    March invoice. Returns (account, march invoice id, credit note id)."""
    issuers.put_issuer(conn, ISSUER)
    acct = make_account(conn, "Credit BV")
    _, v = accounts.create_plan(conn, "cn", "Basic", plan_doc(plan_id="cn"))
    sid = make_meter(conn, "cn-1")
    accounts.assign_meter(conn, acct.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 2), 1.0)
    close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 5))
    finalize_period(pool, PeriodKey(2026, 3), utc(2026, 4, 5))
    march = invoices.list_invoices(conn, customer_id=acct.customer_id, period="2026-03").items[0]
    put_usage(
        conn, sid, utc(2026, 3, 1, 12), utc(2026, 3, 1, 12, 15), 0.0, updated_at=utc(2026, 4, 20)
    )
    close_period(pool, PeriodKey(2026, 4), utc(2026, 5, 5))
    finalize_period(pool, PeriodKey(2026, 4), utc(2026, 5, 5))
    (cn,) = notes.list_for_invoice(conn, march.invoice_id)
    return acct, march.invoice_id, cn.credit_note_id


def test_invoice_page_lists_credit_notes_with_downloads(
    client: TestClient, conn: Conn, pool: Pool
) -> None:
    """The March page shows CN-2026-000001 and its PDF, UBL and Factur-X links, which work."""
    acct, march, cn = _credited(conn, pool)
    page = client.get(f"/portal/invoices/{march}", headers={**acct.auth, **HTML}).text
    section = page[page.index('id="credit-notes"') :]
    assert "CN-2026-000001" in section
    for fmt in ("pdf", "ubl", "facturx"):
        href = f"/portal/invoices/{march}/credit-notes/{cn}?format={fmt}"
        assert f'href="{href}"' in section
        r = client.get(href, headers=acct.auth)
        assert r.status_code == 200, fmt
        assert "CN-2026-000001" in r.headers["content-disposition"]
    assert client.get(
        f"/portal/invoices/{march}/credit-notes/{cn}?format=pdf", headers=acct.auth
    ).content.startswith(b"%PDF")
    ubl = client.get(f"/portal/invoices/{march}/credit-notes/{cn}?format=ubl", headers=acct.auth)
    assert b"<CreditNote" in ubl.content
    assert b"INV-2026-000001" in ubl.content  # refers to the invoice it corrects
    as_json = client.get(f"/portal/invoices/{march}/credit-notes/{cn}", headers=acct.auth)
    assert as_json.headers["content-type"] == "application/json"
    assert "CN-2026-000001" in as_json.text


def test_other_customers_never_get_a_credit_note(
    client: TestClient, conn: Conn, pool: Pool
) -> None:
    """Another customer, a wrong invoice id and no credential: 404 / 404 / 401."""
    acct, march, cn = _credited(conn, pool)
    other = make_account(conn, "Other BV")
    url = f"/portal/invoices/{march}/credit-notes/{cn}?format=pdf"
    assert client.get(url, headers=other.auth).status_code == 404
    assert client.get(url).status_code == 401
    april = invoices.list_invoices(conn, customer_id=acct.customer_id, period="2026-04").items[0]
    wrong = f"/portal/invoices/{april.invoice_id}/credit-notes/{cn}?format=pdf"
    assert client.get(wrong, headers=acct.auth).status_code == 404
    assert (
        client.get(f"/portal/invoices/{march}/credit-notes/999999", headers=acct.auth).status_code
        == 404
    )
    page = client.get(f"/portal/invoices/{april.invoice_id}", headers={**acct.auth, **HTML}).text
    assert "No credit notes correct this invoice." in page
