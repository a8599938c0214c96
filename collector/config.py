"""Collector configuration: a TOML file, overridden by ``TALLY_<SECTION>_<KEY>`` environment
variables (e.g. ``TALLY_DATABASE_URL``, ``TALLY_MQTT_URL``, ``TALLY_API_PORT``).

Validated by pydantic at this boundary; every problem becomes a ``ConfigError`` that names the
setting and where it came from. Unknown top-level sections are kept (other parts of Tally read
their own sections from ``CollectorConfig.model_extra``); unknown keys inside the collector's
sections are errors.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.redact import redact_url
from collector.errors import ConfigError
from collector.ingest.decoders import READINGS_FILTER, STATUS_FILTER

__all__ = [
    "ApiConfig",
    "CollectorConfig",
    "DatabaseConfig",
    "DevicesConfig",
    "IngestConfig",
    "MqttConfig",
    "MqttEndpoint",
    "load_config",
]

_ENV_PREFIX = "TALLY_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    url: str = "postgresql://postgres@127.0.0.1:5432/tally"
    pool_min: int = Field(default=1, ge=1, le=100)
    pool_max: int = Field(default=8, ge=1, le=200)
    timescale: Literal["auto", "yes", "no"] = "auto"
    # TimescaleDB: role that owns the continuous aggregates; the collector's role must be a
    # member of it and switches to it only to refresh them (docs/operations.md, roles)
    owner_role: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")) and "=" not in value:
            raise ValueError("must be a postgresql:// URL or a libpq key=value string")
        return value


class MqttEndpoint(BaseModel):
    """The parts of an ``mqtt://`` or ``mqtts://`` URL."""

    model_config = ConfigDict(frozen=True)
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


class MqttConfig(_Section):
    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = Field(default="tally-collector", min_length=1, max_length=128)
    shared_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    readings_topic: str = READINGS_FILTER
    status_topic: str = STATUS_FILTER
    # SenML packs from devices without an agent (docs/protocol.md); "" disables it.
    senml_topic: str = "tally/v1/+/senml"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    qos: Literal[1, 2] = 1
    reconnect_min_s: float = Field(default=0.5, gt=0, le=600)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value

    def endpoint(self) -> MqttEndpoint:
        return parse_mqtt_url(self.url)

    def subscriptions(self) -> tuple[str, ...]:
        """Topic filters to subscribe; readings through a shared subscription if configured."""
        batches = [self.readings_topic] + ([self.senml_topic] if self.senml_topic else [])
        if self.shared_group:
            batches = [f"$share/{self.shared_group}/{t}" for t in batches]
        return (*batches, self.status_topic)


class IngestConfig(_Section):
    max_messages: int = Field(default=100, ge=1, le=100_000)
    max_wait_ms: int = Field(default=50, ge=0, le=60_000)
    idle_ms: int = Field(default=10, ge=0, le=60_000)
    retry_initial_s: float = Field(default=0.2, gt=0, le=60)
    retry_max_s: float = Field(default=1.0, gt=0, le=3600)  # bounds the resume after an outage
    partition_check_s: float = Field(default=6 * 3600, gt=0)
    # Interval usage is re-derived as soon as a flush commits new readings; this is the
    # longest wait without one (ranges queued by other processes: meter changes, another
    # collector). 0 disables the refresh, e.g. for an ingest-only instance when another
    # instance maintains usage.
    usage_refresh_s: float = Field(default=1.0, ge=0, le=3600)
    usage_refresh_gap_s: float = Field(default=0.1, ge=0, le=60)  # between two passes' starts
    # false: no pass on commit, only every usage_refresh_s (the scheme before; benchmarks)
    usage_refresh_on_commit: bool = True
    usage_refresh_limit: int = Field(default=5000, ge=1, le=1_000_000)  # series per pass
    # readings one pass holds in memory at once (windows are loaded and derived in groups)
    usage_refresh_max_readings: int = Field(default=2_000_000, ge=10_000, le=100_000_000)


class ApiConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Digests of staff bearer tokens ("sha256:<hex>", from `tally-collector staff-token`);
    # in the environment, comma-separated. Required unless the API listens on loopback only.
    staff_tokens: tuple[str, ...] = ()
    # Staff keys with roles (docs/security.md): when true, every staff route needs a key or a
    # token even on loopback (it is also enforced once any key exists in the database).
    require_staff_key: bool = False
    # How long a key lookup is cached: a key revoked by another process is refused at most
    # this many seconds later.
    key_cache_s: float = Field(default=5.0, ge=0, le=300)
    # Largest accepted request body; larger ones get 413 before the body is read.
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=1 << 30)

    @field_validator("staff_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    def is_loopback(self) -> bool:
        return self.host in {"127.0.0.1", "::1", "localhost"} or self.host.startswith("127.")


class DevicesConfig(_Section):
    """Device identity (docs/security.md "Devices and the broker")."""

    # Enrollment and broker provisioning on; needs broker_admin_url.
    enabled: bool = False
    # The dynamic-security admin account (`mosquitto_ctrl dynsec init`), e.g.
    # mqtt://tally-admin:<password>@mosquitto:1883 (the internal listener).
    broker_admin_url: str = ""
    broker_ca_file: Path | None = None
    # What enrolled devices are told to connect to (the TLS listener).
    device_broker_url: str = "mqtts://127.0.0.1:8883"
    # This collector's URL as devices reach it (printed into the QR code).
    public_url: str = ""
    # Batches from devices that are not registered and active are dead-lettered unless this is
    # true (for development setups without enrollment).
    accept_unregistered: bool = False

    @field_validator("broker_admin_url")
    @classmethod
    def _check_admin(cls, value: str) -> str:
        if value:
            parse_mqtt_url(value)
        return value


class WebhooksConfig(_Section):
    # The notification loop: webhook deliveries every poll_s, alert rules and offline devices
    # every check_s (docs/webhooks.md). Disable it on all but one instance if you like; two
    # instances never deliver the same webhook at once.
    enabled: bool = True
    poll_s: float = Field(default=1.0, gt=0, le=3600)
    check_s: float = Field(default=60.0, gt=0, le=86_400)
    offline_after_s: float = Field(default=3600.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0, le=300)


class CollectorConfig(BaseModel):
    """The whole collector configuration."""

    model_config = ConfigDict(extra="allow", frozen=True)
    database: DatabaseConfig = DatabaseConfig()
    mqtt: MqttConfig = MqttConfig()
    ingest: IngestConfig = IngestConfig()
    api: ApiConfig = ApiConfig()
    devices: DevicesConfig = DevicesConfig()
    webhooks: WebhooksConfig = WebhooksConfig()


def parse_mqtt_url(url: str) -> MqttEndpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"{redact_url(url)!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"{redact_url(url)!r} has no host")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"{redact_url(url)!r} has an invalid port") from exc
    return MqttEndpoint(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


_SECTIONS: dict[str, type[_Section]] = {
    "database": DatabaseConfig,
    "mqtt": MqttConfig,
    "ingest": IngestConfig,
    "api": ApiConfig,
    "devices": DevicesConfig,
    "webhooks": WebhooksConfig,
}


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    for section, model in _SECTIONS.items():
        for name in model.model_fields:
            var = f"{_ENV_PREFIX}{section}_{name}".upper()
            if var in env:
                found.setdefault(section, {})[name] = env[var]
                origin[f"{section}.{name}"] = var
    return found, origin


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> CollectorConfig:
    """Read ``path`` (optional; default ``$TALLY_CONFIG``) and apply environment overrides."""
    env = os.environ if env is None else env
    if path is None and env.get(f"{_ENV_PREFIX}CONFIG"):
        path = Path(env[f"{_ENV_PREFIX}CONFIG"])
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    overrides, origin = _env_overrides(env)
    for section, values in overrides.items():
        current = data.get(section, {})
        if not isinstance(current, dict):
            raise ConfigError(f"[{section}] in {path} must be a table")
        data[section] = {**current, **values}
    try:
        return CollectorConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            source = origin.get(where, str(path) if path else "defaults")
            problems.append(f"{where}: {err['msg']} (from {source})")
        raise ConfigError("invalid collector configuration:\n  " + "\n  ".join(problems)) from exc
