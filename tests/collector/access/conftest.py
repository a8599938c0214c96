"""Fixtures for staff access tests: a migrated database, keys of every role, app factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from collector.access import Role, issue_key
from collector.api.app import create_app
from collector.devices.broker_fake import MemoryBrokerAccess
from collector.devices.guessing import AttemptLimiter
from collector.devices.service import DeviceService, ServiceSettings
from collector.storage import access_store
from collector.storage.database import Pool, open_pool
from collector.storage.devices_store import DeviceStore
from collector.storage.migrate import migrate
from tests.collector.devices.api_support import Clock


@pytest.fixture
def pool(pg_url: str) -> Iterator[Pool]:
    migrate(pg_url, use_timescale=False)
    p = open_pool(pg_url, min_size=1, max_size=4)
    p.wait(10)
    yield p
    p.close()


def make_key(pool: Pool, role: Role, *, expires_at: datetime | None = None,
             now: datetime | None = None) -> tuple[str, str]:
    """``(secret, key_id)`` of a new stored key of ``role``."""
    issued = issue_key(role=role, name=f"test {role}", now=now or datetime.now(UTC),
                       created_by="test", expires_at=expires_at)
    with pool.connection() as conn:
        access_store.add_key(conn, issued)
    return issued.secret, issued.key.key_id


@pytest.fixture
def keys(pool: Pool) -> dict[Role, str]:
    """One key per role."""
    return {role: make_key(pool, role)[0] for role in Role}


@pytest.fixture
def app_factory(pool: Pool) -> Callable[..., FastAPI]:
    def make(**kwargs: Any) -> FastAPI:
        kwargs.setdefault("require_staff_key", True)
        app = create_app(pool, **kwargs)
        # Device identity on the in-package fake broker, so its routes answer as in production.
        app.state.devices = DeviceService(
            DeviceStore(pool), MemoryBrokerAccess(),
            ServiceSettings("mqtts://broker.example:8883", "https://tally.example"),
            Clock(), AttemptLimiter(max_failures=3, global_failures=100, window_s=600),
        )
        return app

    return make


@pytest.fixture
def client(app_factory: Callable[..., FastAPI]) -> TestClient:
    return TestClient(app_factory())


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
