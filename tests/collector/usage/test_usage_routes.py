"""Usage HTTP endpoints against the real database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from collector.api import usage_routes
from collector.api.app import create_app
from collector.storage.database import Pool, open_pool
from collector.storage.migrate import migrate
from collector.storage.usage_store import refresh_usage

from .conftest import ingest, new_series, utc

T0 = utc(2026, 3, 29, 0).timestamp()


@pytest.fixture
def pool(pg_url: str) -> Iterator[Pool]:
    migrate(pg_url)
    p = open_pool(pg_url, min_size=1, max_size=2)
    p.wait(10)
    yield p
    p.close()


@pytest.fixture
def setup(pool: Pool, pg_url: str) -> tuple[TestClient, int]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        sid = new_series(conn)
        ingest(conn, sid, [T0, T0 + 900, T0 + 3600, T0 + 4500], [0.0, 1.0, 4.0, 5.0])
        refresh_usage(conn, utc(2026, 4, 1))
    app = create_app(pool)
    app.include_router(usage_routes.router)
    app.state.clock = lambda: utc(2026, 4, 1)
    return TestClient(app), sid


def test_series_usage_shows_estimated_share(setup: tuple[TestClient, int]) -> None:
    """The 3 kWh of a 45-min gap are estimated: 3 of 5 kWh, per bucket and in total."""
    client, sid = setup
    r = client.get(f"/usage/series/{sid}", params={
        "from": "2026-03-29T00:00:00Z", "to": "2026-03-29T01:15:00Z", "resolution": "15m"})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 5.0
    assert body["total_estimated"] == 3.0
    assert body["estimated_share"] == pytest.approx(0.6)
    assert body["buckets"][1]["estimated_share"] == 1.0
    assert "GAP" in body["buckets"][1]["flags"]


def test_meter_usage_by_device_and_metric(setup: tuple[TestClient, int]) -> None:
    """The device/meter route finds the series by metric and rolls up hourly."""
    client, _ = setup
    r = client.get("/devices/dev-1/meters/m1/usage", params={
        "metric": "energy", "from": "2026-03-29T00:00:00Z", "to": "2026-03-29T02:00:00Z",
        "resolution": "1h"})
    assert r.status_code == 200
    assert [b["quantity"] for b in r.json()["buckets"]] == [4.0, 1.0]


def test_unknown_series_is_404(setup: tuple[TestClient, int]) -> None:
    """A series that does not exist is a 404."""
    client, _ = setup
    assert client.get("/usage/series/999999").status_code == 404


def test_bad_zone_is_422(setup: tuple[TestClient, int]) -> None:
    """An unknown IANA zone is rejected with 422."""
    client, sid = setup
    assert client.get(f"/usage/series/{sid}", params={"tz": "Mars/Olympus"}).status_code == 422


def test_put_config_then_get_it_back(setup: tuple[TestClient, int]) -> None:
    """Staff can store meter settings; they are read back and queue a re-derivation."""
    client, sid = setup
    r = client.put(f"/meters/{sid}/config", json={"register_max": 100000, "max_rate_per_hour": 40})
    assert r.status_code == 200
    got = client.get(f"/meters/{sid}/config").json()
    assert got["register_max"] == 100000
    assert got["max_rate_per_hour"] == 40


def test_post_replacement_twice_at_same_time_conflicts(setup: tuple[TestClient, int]) -> None:
    """A replacement is created once; the same instant again is a 409."""
    client, sid = setup
    body = {"at": "2026-03-29T00:20:00Z", "old_final": 1.2, "new_initial": 0.0}
    assert client.post(f"/meters/{sid}/replacements", json=body).status_code == 201
    assert client.post(f"/meters/{sid}/replacements", json=body).status_code == 409


def test_counter_kind_is_stored_and_an_unknown_one_is_422(setup: tuple[TestClient, int]) -> None:
    """counter_kind (register | software) is kept with the meter settings; 'gas' is refused."""
    client, sid = setup
    assert client.get(f"/meters/{sid}/config").json()["counter_kind"] == "register"
    r = client.put(f"/meters/{sid}/config", json={"counter_kind": "software"})
    assert r.status_code == 200
    assert client.get(f"/meters/{sid}/config").json()["counter_kind"] == "software"
    assert client.put(f"/meters/{sid}/config", json={"counter_kind": "gas"}).status_code == 422
