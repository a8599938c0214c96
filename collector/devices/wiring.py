"""Builds the device service from the collector configuration (used by the runner and CLI)."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.config import DevicesConfig, parse_mqtt_url
from collector.errors import BrokerAccessError, ConfigError
from collector.storage.database import Pool
from collector.storage.devices_store import DeviceStore
from collector.webhooks.outbox import OutboxSink

from .broker_dynsec import DynsecBrokerAccess, DynsecSettings
from .broker_port import BrokerAccess
from .service import DeviceService, ServiceSettings

__all__ = ["UnconfiguredBroker", "build_device_service", "dynsec_settings", "service_for"]


def _now() -> datetime:
    return datetime.now(UTC)


def dynsec_settings(config: DevicesConfig) -> DynsecSettings:
    if not config.broker_admin_url:
        raise ConfigError("devices.broker_admin_url is required for device enrollment")
    ep = parse_mqtt_url(config.broker_admin_url)
    if not ep.username or not ep.password:
        raise ConfigError("devices.broker_admin_url must carry the admin username and password")
    return DynsecSettings(ep.host, ep.port, ep.username, ep.password, ep.tls,
                          config.broker_ca_file)


class UnconfiguredBroker:
    """Stands in for the broker when no admin account is configured (listing and creating
    enrollments still work; anything that changes the broker says what is missing)."""

    def _refuse(self) -> None:
        raise BrokerAccessError("devices.broker_admin_url is not set; the broker cannot be changed")

    def provision(self, device_id: str, password: str) -> None:
        self._refuse()

    def revoke(self, device_id: str) -> None:
        self._refuse()

    def publish_retained(self, topic: str, payload: bytes) -> None:
        self._refuse()


def service_for(config: DevicesConfig, pool: Pool) -> DeviceService:
    """The service with the dynamic-security broker adapter (or ``UnconfiguredBroker``)."""
    broker: BrokerAccess = (
        DynsecBrokerAccess(dynsec_settings(config)) if config.broker_admin_url
        else UnconfiguredBroker()
    )
    return DeviceService(
        DeviceStore(pool), broker,
        ServiceSettings(config.device_broker_url, config.public_url), _now,
        events=OutboxSink(),
    )


def build_device_service(config: DevicesConfig, pool: Pool) -> DeviceService | None:
    """The service, or ``None`` when enrollment is disabled."""
    if not config.enabled:
        return None
    dynsec_settings(config)  # enabled without an admin account is a configuration error
    return service_for(config, pool)
