"""The billing HTTP API: CRUD, validation errors, idempotency keys, runs, documents, lineage."""

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

CUSTOMER: dict[str, Any] = {
    "name": "Acme BV",
    "currency": "EUR",
    "time_zone": "Europe/Amsterdam",
    "tax_rate": "0.21",
    "address": {
        "line1": "Damrak 1",
        "postal_code": "1012 LG",
        "city": "Amsterdam",
        "country": "NL",
    },
}


@pytest.fixture
def client(pool: psycopg_pool.ConnectionPool[Any]) -> Iterator[TestClient]:
    """A test client of the collector app with the billing router."""
    app = create_app(pool)
    app.include_router(billing_routes.router)
    with TestClient(app) as c:
        yield c


def test_same_idempotency_key_and_body_returns_the_same_customer(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A retried POST with the same key creates one customer and replays the response."""
    h = {"Idempotency-Key": "k-1"}
    first = client.post("/billing/customers", json=CUSTOMER, headers=h)
    second = client.post("/billing/customers", json=CUSTOMER, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    n = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert n is not None
    assert n[0] == 1


def test_same_idempotency_key_with_another_body_is_a_conflict(client: TestClient) -> None:
    """Reusing a key for a different request is refused with 409."""
    h = {"Idempotency-Key": "k-2"}
    assert client.post("/billing/customers", json=CUSTOMER, headers=h).status_code == 201
    other = {**CUSTOMER, "name": "Other BV"}
    assert client.post("/billing/customers", json=other, headers=h).status_code == 409


def test_failed_request_does_not_burn_its_key(client: TestClient) -> None:
    """A 422 rolls back the key claim, so the corrected request may reuse it... with its body."""
    h = {"Idempotency-Key": "k-3"}
    bad = {**CUSTOMER, "time_zone": "Mars/Olympus"}
    assert client.post("/billing/customers", json=bad, headers=h).status_code == 422
    assert client.post("/billing/customers", json=CUSTOMER, headers=h).status_code == 201


def test_errors_map_to_404_409_422(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """Unknown ids are 404, double-billing a meter 409, an invalid plan 422."""
    assert client.get("/billing/customers/999").status_code == 404
    assert (
        client.post("/billing/plans", json={"code": "x", "document": plan_doc("-1")}).status_code
        == 422
    )
    cid = client.post("/billing/customers", json=CUSTOMER).json()["customer_id"]
    pv = client.post("/billing/plans", json={"code": "basic", "document": plan_doc()}).json()[
        "version"
    ]["plan_version_id"]
    sid = make_series(conn, "dev-1")
    sub = {
        "customer_id": cid,
        "series_id": sid,
        "plan_version_id": pv,
        "valid_from": "2026-01-01T00:00:00+00:00",
    }
    assert client.post("/billing/subscriptions", json=sub).status_code == 201
    assert client.post("/billing/subscriptions", json=sub).status_code == 409


def test_customer_list_paginates(client: TestClient) -> None:
    """limit + cursor walk through all customers."""
    for i in range(3):
        client.post("/billing/customers", json={**CUSTOMER, "name": f"C{i}"})
    page = client.get("/billing/customers", params={"limit": 2}).json()
    rest = client.get(
        "/billing/customers", params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert [c["name"] for c in page["items"] + rest["items"]] == ["C0", "C1", "C2"]
    assert rest["next_cursor"] is None


def test_close_run_documents_and_explain(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """Close via the API, poll the run, fetch JSON/PDF/CSV and explain a line."""
    cid = client.post("/billing/customers", json=CUSTOMER).json()["customer_id"]
    pv = client.post("/billing/plans", json={"code": "basic", "document": plan_doc()}).json()[
        "version"
    ]["plan_version_id"]
    sid = make_series(conn, "dev-1")
    client.post(
        "/billing/subscriptions",
        json={
            "customer_id": cid,
            "series_id": sid,
            "plan_version_id": pv,
            "valid_from": "2026-01-01T00:00:00+00:00",
        },
    )
    put_usage(conn, sid, utc(2026, 3, 2), utc(2026, 3, 3), 1.0, estimated=0.25, readings=3)
    started = client.post(
        "/billing/periods/2026-03/close", json={"now": "2026-04-10T00:00:00+00:00"}
    )
    assert started.status_code == 202
    run = client.get(f"/billing/runs/{started.json()['run_id']}").json()
    assert run["status"] == "done"
    assert run["progress"] == 1.0
    status = client.get("/billing/periods/2026-03").json()
    assert status["invoices"] == {"draft": 1, "final": 0}
    assert [r["run_id"] for r in status["runs"]] == [run["run_id"]]
    inv_id = client.get("/invoices", params={"period": "2026-03"}).json()["items"][0]["invoice_id"]
    inv = client.get(f"/invoices/{inv_id}").json()
    assert inv["subtotal"] == "34.00"  # 96 kWh x 0.25 + 10.00
    energy = next(ln for ln in inv["lines"] if ln["kind"] == "usage")
    assert energy["estimated"] is True
    pdf = client.get(f"/invoices/{inv_id}", params={"format": "pdf"})
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    csv_text = client.get(f"/invoices/{inv_id}", params={"format": "csv"}).text
    assert csv_text.splitlines()[0].startswith("invoice_number,")
    why = client.get(f"/invoices/{inv_id}/lines/{energy['line_id']}/explain").json()
    assert why["meters"][0]["series_id"] == sid
    assert why["intervals"]["count"] == 96
    assert why["reading_count"] == 288
    assert why["estimated_quantity"] == "24.000000"
    assert why["plan"]["plan_version_id"] == pv
    fin = client.post(f"/invoices/{inv_id}/finalize", headers={"Idempotency-Key": "f"})
    again = client.post(f"/invoices/{inv_id}/finalize", headers={"Idempotency-Key": "f"})
    assert fin.json()["number"] == again.json()["number"] == "INV-2026-000001"
    assert client.post(f"/invoices/{inv_id}/finalize").status_code == 409
