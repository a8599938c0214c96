"""Agent configuration: a TOML file validated by pydantic, then ``TALLY_AGENT_*`` overrides.

Environment overrides name a top-level field (``TALLY_AGENT_DEVICE_ID``) or a section field
(``TALLY_AGENT_BROKER_URL``, ``TALLY_AGENT_BUFFER_MAX_READINGS``, ``TALLY_AGENT_BATCH_MAX_AGE_S``).
Every problem is raised as ``ConfigError`` naming the field (``sources[1].interval_s: ...``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.buffer_port import BufferLimits, FullPolicy
from agent.errors import ConfigError
from agent.protocol import _ID_RE, MAX_READINGS_PER_BATCH, Encoding

ENV_PREFIX = "TALLY_AGENT_"
_SECTIONS = ("broker", "buffer", "batch")
_NOT_OVERRIDES = {"TALLY_AGENT_CONFIG"}  # the CLI's default --config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Strict):
    """Where and how to reach the MQTT broker."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    # The operator CA that signed the broker's certificate (private CAs); default: system CAs.
    ca_file: Path | None = None
    # Client certificate and key, for brokers that authenticate devices by certificate.
    cert_file: Path | None = None
    key_file: Path | None = None
    # A file holding the password (written 0600 by `tally-agent enroll`); wins over `password`.
    password_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must look like mqtt://host:port or mqtts://host:port")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from exc
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if self.use_tls else 1883)

    @property
    def use_tls(self) -> bool:
        return self.tls or urlsplit(self.url).scheme == "mqtts"

    @property
    def credentials(self) -> tuple[str | None, str | None]:
        """(username, password): explicit fields win over ones in the URL."""
        parts = urlsplit(self.url)
        user = self.username or (unquote(parts.username) if parts.username else None)
        password = self.password or (unquote(parts.password) if parts.password else None)
        if self.password_file is not None:
            try:
                password = self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"broker.password_file: cannot read {self.password_file}: "
                    f"{exc.strerror or exc}"
                ) from exc
        return user, password


class BufferConfig(_Strict):
    """The durable SQLite buffer."""

    path: Path = Path("/var/lib/tally-agent/buffer.db")
    max_readings: int | None = Field(default=10_000_000, ge=1)
    max_bytes: int | None = Field(default=None, ge=65_536)
    policy: FullPolicy = FullPolicy.DROP_OLDEST

    def limits(self) -> BufferLimits:
        return BufferLimits(self.max_readings, self.max_bytes, self.policy)


class BatchConfig(_Strict):
    """How readings are grouped into published batches, and when a batch may be forgotten.

    ``confirm = "collector"`` (the default): a batch is deleted only when the collector
    acknowledges, after its database commit, on ``tally/v1/<device>/ack``; PUBACK only marks it
    sent. At most ``window`` batches are sent and unconfirmed at once; one unconfirmed after
    ``confirm_timeout_s`` (or after any reconnect) is sent again. ``"broker"`` deletes on PUBACK
    (for a collector that does not acknowledge; loses what a crashing broker had not saved).
    """

    max_readings: int = Field(default=1000, ge=1, le=MAX_READINGS_PER_BATCH)
    max_age_s: float = Field(default=10.0, gt=0, le=86_400)
    in_flight: int = Field(default=8, ge=1, le=64)
    window: int = Field(default=32, ge=1, le=1024)
    confirm_timeout_s: float = Field(default=30.0, gt=0, le=86_400)
    confirm: Literal["collector", "broker"] = "collector"


class SourceConfig(BaseModel):
    """One ``[[sources]]`` entry: common fields; every other key is a type-specific option."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(min_length=1)
    name: str
    interval_s: float = Field(gt=0, le=86_400)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError("must be 1-64 characters of [A-Za-z0-9._:-]")
        return value

    @property
    def options(self) -> dict[str, object]:
        return dict(self.model_extra or {})


class AgentConfig(_Strict):
    """The whole agent configuration."""

    device_id: str
    encoding: Encoding = Encoding.JSON
    status_interval_s: float = Field(default=30.0, gt=0, le=86_400)
    shutdown_timeout_s: float = Field(default=10.0, ge=0, le=600)
    broker: BrokerConfig = BrokerConfig()
    buffer: BufferConfig = BufferConfig()
    batch: BatchConfig = BatchConfig()
    sources: list[SourceConfig] = Field(default_factory=list)

    @field_validator("device_id")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError("must be 1-64 characters of [A-Za-z0-9._:-]")
        return value

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return value


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"


def _apply_env(doc: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    top = set(AgentConfig.model_fields) - {*_SECTIONS, "sources"}
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
    for key, value in sorted(env.items()):
        if not key.startswith(ENV_PREFIX) or key in _NOT_OVERRIDES:
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name in top:
            out[name] = value
            continue
        section, _, field = name.partition("_")
        sections: dict[str, type[BaseModel]] = {
            "broker": BrokerConfig, "buffer": BufferConfig, "batch": BatchConfig
        }
        model = sections.get(section)
        if model is None or field not in model.model_fields:
            raise ConfigError(f"{key}: no such setting to override")
        sub = out.setdefault(section, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{section}: must be a table")
        sub[field] = None if value == "" else value
    return out


def parse_config(doc: Mapping[str, Any], env: Mapping[str, str] | None = None) -> AgentConfig:
    """Validate a config mapping (as read from TOML) after applying environment overrides."""
    merged = _apply_env(dict(doc), env or {})
    try:
        return AgentConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_field_path(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid agent configuration: {problems}") from exc


def load_config(path: Path, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read, override and validate the TOML file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_config(doc, env)
