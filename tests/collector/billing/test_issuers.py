"""Issuers and the customer's VAT facts through the API, and the issuer snapshot of invoices:
taken when drafted, taken again at finalization, immutable afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api import billing_routes
from collector.api.app import create_app
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, utc

Pool = psycopg_pool.ConnectionPool[Any]
Conn = psycopg.Connection[Any]

ISSUER: dict[str, Any] = {
    "name": "Tally Energy B.V.",
    "address": {
        "line1": "Keizersgracht 100",
        "postal_code": "1015 AA",
        "city": "Amsterdam",
        "country": "NL",
    },
    "vat_id": "NL 859123456 B01",
    "iban": "NL91 ABNA 0417 1643 00",
    "payment_terms_days": 30,
}
CUSTOMER: dict[str, Any] = {
    "name": "Acme BV",
    "currency": "EUR",
    "time_zone": "Europe/Amsterdam",
    "tax_rate": "0.21",
    "language": "nl",
    "issuer": "tally-nl",
    "address": {
        "line1": "Damrak 1",
        "postal_code": "1012 LG",
        "city": "Amsterdam",
        "country": "NL",
    },
    "tax": {"business": True, "vat_id": "NL001234567B01"},
}


@pytest.fixture
def client(pool: Pool) -> Iterator[TestClient]:
    """A test client of the collector app with the billing router."""
    app = create_app(pool)
    app.include_router(billing_routes.router)
    with TestClient(app) as c:
        yield c


def test_issuer_is_validated_and_normalised(client: TestClient) -> None:
    """Spaces are taken out of VAT id and IBAN; a wrong IBAN check digit is a 422."""
    r = client.put("/billing/issuers/tally-nl", json=ISSUER)
    assert r.status_code == 200
    assert r.json()["iban"] == "NL91ABNA0417164300"
    assert client.get("/billing/issuers/tally-nl").json()["vat_id"] == "NL859123456B01"
    bad = client.put("/billing/issuers/x", json={**ISSUER, "iban": "NL92ABNA0417164300"})
    assert bad.status_code == 422
    assert "check digits" in bad.json()["detail"]
    assert client.get("/billing/issuers/nope").status_code == 404


@pytest.mark.parametrize(
    ("tax_rate", "tax", "field"),
    [
        ("0.21", {"category": "AE"}, "needs a business customer"),
        ("0", {"category": "AE", "business": True, "vat_id": "DE123456789"}, None),
        ("0.21", {"category": "AE", "business": True, "vat_id": "DE123456789"}, "tax_rate 0"),
        ("0", {"category": "E"}, "exemption_reason"),
        ("0.21", {"vat_id": "NL001234567B01"}, "must be a business"),
    ],
)
def test_customer_vat_facts_are_checked(
    client: TestClient, tax_rate: str, tax: dict[str, Any], field: str | None
) -> None:
    """Reverse charge needs a business with a VAT id and rate 0; exempt needs a reason."""
    r = client.post("/billing/customers", json={**CUSTOMER, "tax_rate": tax_rate, "tax": tax})
    if field is None:
        assert r.status_code == 201
        assert r.json()["tax"]["category"] == "AE"
    else:
        assert r.status_code == 422
        assert field in r.json()["detail"]


def test_final_invoice_keeps_the_issuer_of_its_issue_date(client: TestClient, conn: Conn) -> None:
    """The HTML shows the configured seller and due date; changing the issuer afterwards
    does not change a final invoice."""
    client.put("/billing/issuers/tally-nl", json=ISSUER)
    cid = client.post("/billing/customers", json=CUSTOMER).json()["customer_id"]
    pv = client.post("/billing/plans", json={"code": "basic", "document": plan_doc()}).json()[
        "version"
    ]["plan_version_id"]
    sid = make_series(conn, "meter-7")
    client.post(
        "/billing/subscriptions",
        json={
            "customer_id": cid,
            "series_id": sid,
            "plan_version_id": pv,
            "valid_from": "2026-01-01T00:00:00+00:00",
        },
    )
    put_usage(conn, sid, utc(2026, 3, 2), utc(2026, 3, 3), 1.0)
    client.post("/billing/periods/2026-03/close", json={"now": "2026-04-05T00:00:00+00:00"})
    inv_id = client.get("/invoices", params={"period": "2026-03"}).json()["items"][0]["invoice_id"]
    fin = client.post(f"/invoices/{inv_id}/finalize", json={"now": "2026-04-10T08:00:00+00:00"})
    assert fin.status_code == 200
    page = client.get(f"/invoices/{inv_id}", params={"format": "html"}).text
    assert "Tally Energy B.V." in page
    assert "Btw-nummer: NL001234567B01" in page
    assert "10 april 2026" in page  # issue date
    assert "10 mei 2026" in page  # due date: 30 days
    assert "€\u00a034,00" in page  # 96 kWh x 0.25 + 10.00
    assert "Verbruik (meter meter-7 · main)" in page
    legal = client.get(f"/invoices/{inv_id}").json()["legal"]
    assert (legal["issue_date"], legal["due_date"]) == ("2026-04-10", "2026-05-10")
    assert legal["seller"]["vat_id"] == "NL859123456B01"
    assert legal["vat"] == [
        {
            "category": "S",
            "rate": "0.21",
            "taxable": "34.00",
            "tax": "7.14",
            "exemption_code": None,
            "exemption_reason": None,
        }
    ]
    client.put("/billing/issuers/tally-nl", json={**ISSUER, "name": "Renamed B.V."})
    again = client.get(f"/invoices/{inv_id}", params={"format": "html"}).text
    assert "Tally Energy B.V." in again
    assert "Renamed" not in again


def test_einvoice_downloads_of_a_final_invoice(client: TestClient, conn: Conn) -> None:
    """/invoices/{id}/ubl, /cii and /facturx: 409 while a draft, valid documents once final."""
    from tests.collector.billing.einvoice_checks import (  # noqa: PLC0415
        UBL_RULES,
        check_xsd,
        rule_failures,
    )

    client.put(
        "/billing/issuers/tally-nl",
        json={**ISSUER, "peppol_endpoint": "0106:12345678", "company_id": "12345678"},
    )
    cid = client.post(
        "/billing/customers",
        json={**CUSTOMER, "tax": {**CUSTOMER["tax"], "peppol_endpoint": "0106:87654321"}},
    ).json()["customer_id"]
    pv = client.post("/billing/plans", json={"code": "basic", "document": plan_doc()}).json()[
        "version"
    ]["plan_version_id"]
    sid = make_series(conn, "meter-8")
    client.post(
        "/billing/subscriptions",
        json={
            "customer_id": cid,
            "series_id": sid,
            "plan_version_id": pv,
            "valid_from": "2026-01-01T00:00:00+00:00",
        },
    )
    put_usage(conn, sid, utc(2026, 3, 2), utc(2026, 3, 3), 1.0)
    client.post("/billing/periods/2026-03/close", json={"now": "2026-04-05T00:00:00+00:00"})
    inv_id = client.get("/invoices", params={"period": "2026-03"}).json()["items"][0]["invoice_id"]
    assert client.get(f"/invoices/{inv_id}/ubl").status_code == 409
    client.post(f"/invoices/{inv_id}/finalize", json={"now": "2026-04-10T08:00:00+00:00"})
    ubl = client.get(f"/invoices/{inv_id}/ubl")
    assert ubl.status_code == 200
    assert ubl.headers["content-type"] == "application/xml"
    check_xsd(ubl.content, "ubl-2.1-invoice")
    assert rule_failures(ubl.content, UBL_RULES) == []
    assert b'<cbc:PayableAmount currencyID="EUR">41.14</cbc:PayableAmount>' in ubl.content
    cii = client.get(f"/invoices/{inv_id}", params={"format": "cii"})
    check_xsd(cii.content, "factur-x")
    fx = client.get(f"/invoices/{inv_id}/facturx")
    assert fx.status_code == 200
    assert fx.content.startswith(b"%PDF")
    assert 'filename="invoice-' in fx.headers["content-disposition"]
