"""Staff routes require a configured staff token; health and the portal do not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.api.staff_auth import hash_token
from collector.config import load_config
from collector.errors import ConfigError
from collector.runner import _api_server
from collector.storage.database import Pool, open_pool
from collector.storage.migrate import migrate

TOKEN = "s3cret-staff-token"


@pytest.fixture
def pool(pg_url: str) -> Iterator[Pool]:
    migrate(pg_url, use_timescale=False)
    p = open_pool(pg_url, min_size=1, max_size=2)
    p.wait(10)
    yield p
    p.close()


@pytest.fixture
def client(pool: Pool) -> TestClient:
    return TestClient(create_app(pool, staff_tokens=[hash_token(TOKEN)]))


@pytest.mark.parametrize("path", ["/devices", "/dead-letters", "/billing/customers",
                                  "/usage/series/1?from=2026-01-01T00:00:00Z"
                                  "&to=2026-01-02T00:00:00Z"])
def test_staff_route_without_token_is_401(client: TestClient, path: str) -> None:
    """No token, a wrong token or a non-bearer scheme: 401 with a Bearer challenge."""
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = client.get(path, headers=headers)
        assert r.status_code == 401, (path, headers)
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_staff_route_with_token_answers(client: TestClient) -> None:
    """The configured token opens the staff routes."""
    r = client.get("/devices", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200


def test_health_and_portal_do_not_take_staff_tokens(client: TestClient) -> None:
    """/health is public; the portal answers 401 for a staff token (it has its own tokens)."""
    assert client.get("/health").status_code in (200, 503)
    r = client.get("/portal/invoices", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 401


def test_api_on_public_address_without_tokens_is_refused(pool: Pool) -> None:
    """Serving the staff API on 0.0.0.0 without staff tokens is a configuration error."""
    cfg = load_config(None, {"TALLY_API_HOST": "0.0.0.0"})
    with pytest.raises(ConfigError, match="staff tokens"):
        _api_server(cfg, pool, None)
    cfg = load_config(None, {"TALLY_API_HOST": "0.0.0.0",
                             "TALLY_API_STAFF_TOKENS": f"{hash_token(TOKEN)}, sha256:00"})
    assert cfg.api.staff_tokens == (hash_token(TOKEN), "sha256:00")
    _api_server(cfg, pool, None)
