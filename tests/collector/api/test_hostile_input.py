"""Hostile input gets a clear 4xx, never a 500: integers beyond bigint, NUL bytes, NaN and
infinity, year 9999, negative horizons, too many buckets."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.storage.database import Pool, open_pool
from collector.storage.migrate import migrate
from tests.conftest import _with_dbname

BIG = str(2**64)
DAY = "from=2026-01-01T00:00Z&to=2026-01-02T00:00Z"
CUSTOMER = {"name": "a", "address": {"line1": "x", "city": "y", "country": "NL"},
            "currency": "EUR", "time_zone": "UTC", "tax_rate": "0.2"}


@pytest.fixture(scope="module")
def client(pg_server_url: str) -> Iterator[TestClient]:
    """One database for the module: these requests change nothing."""
    name = f"tally_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(pg_server_url, name)
    migrate(url, use_timescale=False)
    pool: Pool = open_pool(url, min_size=1, max_size=2)
    pool.wait(10)
    yield TestClient(create_app(pool), raise_server_exceptions=False)
    pool.close()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


GETS = [
    (f"/usage/series/{BIG}?{DAY}", "less than or equal to 9223372036854775807"),
    (f"/billing/customers/{BIG}", "less than or equal"),
    (f"/invoices/1/lines/{BIG}/explain", "less than or equal"),
    (f"/billing/subscriptions?customer_id={BIG}", "less than or equal"),
    (f"/invoices?customer_id={BIG}", "less than or equal"),
    (f"/dead-letters?before={BIG}", "less than or equal"),
    ("/devices/a%00b/ingest", "NUL bytes"),
    (f"/devices/a/meters/m/readings?{DAY}&metric=a%00", "NUL bytes"),
    ("/billing/customers?name=a%00", "NUL bytes"),
    ("/devices/a/meters/m/readings?from=2026-01-01T00:00Z&to=9999-12-31T23:59:59Z",
     "time must be between"),
    ("/devices/a/meters/m/readings?from=9999-12-31T23:00-05:00&to=9999-12-31T23:59:59-05:00",
     "time must be between"),
    ("/usage/series/1?from=2026-01-01T00:00Z&to=9999-12-31T00:00Z&resolution=1mo",
     "time must be between"),
    ("/billing/periods/99999-01", "YYYY-MM"),
    ("/audit?since=9999-12-31T23:59:59-05:00", "time must be between"),
]


@pytest.mark.parametrize(("path", "message"), GETS)
def test_hostile_query_is_a_clear_422(client: TestClient, path: str, message: str) -> None:
    r = client.get(path)
    assert r.status_code == 422, r.text
    assert message in r.text


def test_hostile_portal_query_is_a_clear_422_for_a_customer(client: TestClient) -> None:
    """Portal routes authenticate first (401 without a customer credential), then refuse an
    id beyond bigint with a clear 422."""
    path = f"/portal/consumption/meters/{BIG}"
    assert client.get(path).status_code == 401
    cid = client.post("/billing/customers", json=CUSTOMER).json()["customer_id"]
    r = client.post(f"/billing/customers/{cid}/portal-tokens")
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    r = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422, r.text
    assert "less than or equal" in r.text


BODIES = [
    ("PUT", "/meters/1/config", '{"expected_interval_s": Infinity}', "> 0"),
    ("PUT", "/meters/1/config", '{"gap_factor": NaN}', "gap_factor"),
    ("POST", "/meters/1/replacements",
     '{"at": "2026-01-01T00:00Z", "old_final": Infinity, "new_initial": 0}', "finite"),
    ("POST", "/billing/periods/2026-01/close", '{"horizon_days": -5}', "greater than or equal"),
    ("POST", "/billing/periods/2026-01/close", '{"grace_hours": 1e300}', "less than or equal"),
    ("POST", "/billing/periods/2026-01/close", '{"now": "9999-12-31T23:59:59Z"}',
     "time must be between"),
    ("POST", "/billing/periods/9999-12/close", "{}", "invalid period"),
    ("POST", "/billing/customers", json.dumps({**CUSTOMER, "name": "a\x00"}), "NUL"),
    ("POST", "/billing/customers", json.dumps({**CUSTOMER, "tax_rate": "NaN"}), "finite"),
    ("POST", "/billing/customers", json.dumps({**CUSTOMER, "anchor_day": 2**70}), "anchor_day"),
    ("POST", "/billing/subscriptions", json.dumps(
        {"customer_id": 2**70, "series_id": 1, "plan_version_id": 1,
         "valid_from": "2026-01-01T00:00Z"}), "less than or equal"),
    ("POST", "/billing/plans", json.dumps({"code": "p", "document": {"x": "\x00"}}), "NUL"),
]


@pytest.mark.parametrize(("method", "path", "body", "message"), BODIES)
def test_hostile_body_is_a_clear_422(
    client: TestClient, method: str, path: str, body: str, message: str
) -> None:
    r = client.request(method, path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert message in r.text


def test_usage_caps_buckets_at_every_resolution(client: TestClient) -> None:
    """One response holds at most MAX_BUCKETS buckets, also at 1h and 1d."""
    for res, span in (("15m", "2026-01-01T00:00Z&to=2027-01-01T00:00Z"),
                      ("1h", "2020-01-01T00:00Z&to=2029-01-01T00:00Z"),
                      ("1d", "1950-01-01T00:00Z&to=2029-01-01T00:00Z")):
        r = client.get(f"/devices/d/meters/m/usage?metric=e&resolution={res}&from={span}")
        assert r.status_code == 422, (res, r.text)
        assert "too many" in r.text
