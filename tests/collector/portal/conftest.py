"""Portal test fixtures: a migrated database, the collector app with a fixed portal clock,
customers with meters and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api import portal_routes
from collector.api.app import create_app
from collector.billing import accounts
from collector.storage import billing_portal_store
from collector.storage.migrate import migrate
from tests.collector.billing.conftest import plan_doc, spec, utc


@pytest.fixture
def db(pg_url: str) -> str:
    """A fresh database with every migration applied."""
    migrate(pg_url)
    return pg_url


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the migrated test database."""
    with psycopg.connect(db, autocommit=True) as c:
        yield c


@pytest.fixture
def pool(db: str) -> Iterator[psycopg_pool.ConnectionPool[Any]]:
    """A small connection pool on the migrated test database."""
    p: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
        db, min_size=1, max_size=4, open=True
    )
    yield p
    p.close()


@dataclass
class Clock:
    """The portal's ``now``, settable by a test."""

    now: datetime


@pytest.fixture
def clock() -> Clock:
    """The portal clock, at 2026-04-10 12:00 UTC unless a test moves it."""
    return Clock(utc(2026, 4, 10, 12))


@pytest.fixture
def client(pool: psycopg_pool.ConnectionPool[Any], clock: Clock) -> Iterator[TestClient]:
    """The collector app (portal router included by create_app) on the fixed clock."""
    app = create_app(pool)
    app.dependency_overrides[portal_routes.get_now] = lambda: clock.now
    with TestClient(app) as c:
        yield c


@dataclass(frozen=True)
class Account:
    customer_id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_plan(conn: psycopg.Connection[Any]) -> int:
    """The basic plan (0.25 EUR/kWh + 10 EUR/month); returns its version id."""
    _, version = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    return version.plan_version_id


def make_account(
    conn: psycopg.Connection[Any], name: str, tz: str = "UTC", *, token: str | None = None
) -> Account:
    """A customer in ``tz`` with a portal token."""
    c = accounts.create_customer(conn, spec(name, tz=tz))
    tok = token or f"token-{c.customer_id}-{name.encode().hex()}"
    billing_portal_store.add_token(conn, c.customer_id, tok)
    return Account(c.customer_id, tok)


def make_meter(conn: psycopg.Connection[Any], device: str, unit: str = "kWh") -> int:
    """A cumulative series of ``device``; returns its id."""
    row = conn.execute(
        "INSERT INTO series (device_id, meter, metric, unit, kind) VALUES (%s, 'main', 'energy',"
        " %s, 'cumulative') RETURNING series_id",
        (device, unit),
    ).fetchone()
    assert row is not None
    return int(row[0])
