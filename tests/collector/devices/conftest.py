"""Fixtures for device identity tests: a private broker with the production configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.api.app import create_app
from collector.config import parse_mqtt_url
from collector.devices.broker_dynsec import DynsecBrokerAccess, DynsecSettings
from collector.devices.broker_fake import MemoryBrokerAccess
from collector.devices.guessing import AttemptLimiter
from collector.devices.service import DeviceService, ServiceSettings
from collector.storage.database import Pool, open_pool
from collector.storage.devices_store import DeviceStore
from collector.storage.migrate import migrate
from tests.support.dynsec_broker import ADMIN_USER, DynsecBroker

from .api_support import Clock

COLLECTOR_PASSWORD = "collector-secret-0123456789"


@pytest.fixture
def dynsec_broker(tmp_path: Path) -> Iterator[DynsecBroker]:
    """Mosquitto started with deploy/mosquitto/mosquitto.conf on ports of its own."""
    broker = DynsecBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def broker_access(dynsec_broker: DynsecBroker) -> Iterator[DynsecBrokerAccess]:
    """The collector's dynamic-security adapter, bootstrapped like a deployment."""
    ep = parse_mqtt_url(dynsec_broker.url)
    access = DynsecBrokerAccess(
        DynsecSettings(ep.host, ep.port, ADMIN_USER, dynsec_broker.admin_password)
    )
    access.bootstrap("collector", COLLECTOR_PASSWORD)
    yield access
    access.close()


@pytest.fixture
def pool(pg_url: str) -> Iterator[Pool]:
    migrate(pg_url, use_timescale=False)
    p = open_pool(pg_url, min_size=1, max_size=2)
    p.wait(10)
    yield p
    p.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker() -> MemoryBrokerAccess:
    return MemoryBrokerAccess()


@pytest.fixture
def client(pool: Pool, broker: MemoryBrokerAccess, clock: Clock) -> TestClient:
    app = create_app(pool)
    app.state.devices = DeviceService(
        DeviceStore(pool), broker, ServiceSettings("mqtts://broker.example:8883",
                                                   "https://tally.example"),
        clock, AttemptLimiter(max_failures=3, global_failures=100, window_s=600),
    )
    return TestClient(app)
