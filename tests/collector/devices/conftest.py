"""Fixtures for device identity tests: a private broker with the production configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.config import parse_mqtt_url
from collector.devices.broker_dynsec import DynsecBrokerAccess, DynsecSettings
from tests.support.dynsec_broker import ADMIN_USER, DynsecBroker

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
