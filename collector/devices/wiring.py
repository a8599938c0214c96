"""Builds the device service from the collector configuration (used by the runner and CLI)."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.config import DevicesConfig, parse_mqtt_url
from collector.errors import ConfigError
from collector.storage.database import Pool
from collector.storage.devices_store import DeviceStore

from .broker_dynsec import DynsecBrokerAccess, DynsecSettings
from .service import DeviceService, ServiceSettings

__all__ = ["build_device_service", "dynsec_settings"]


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


def build_device_service(config: DevicesConfig, pool: Pool) -> DeviceService | None:
    """The service, or ``None`` when enrollment is disabled."""
    if not config.enabled:
        return None
    broker = DynsecBrokerAccess(dynsec_settings(config))
    return DeviceService(
        DeviceStore(pool), broker,
        ServiceSettings(config.device_broker_url, config.public_url), _now,
    )
