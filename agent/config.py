"""Agent configuration: a TOML file validated into frozen structs, then ``TALLY_AGENT_*`` overrides.

Environment overrides name a top-level field (``TALLY_AGENT_DEVICE_ID``) or a section field
(``TALLY_AGENT_BROKER_URL``, ``TALLY_AGENT_BUFFER_MAX_READINGS``, ``TALLY_AGENT_BATCH_MAX_AGE_S``).
Every problem is raised as ``ConfigError`` naming the field (``sources[1].interval_s: ...``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import msgspec
from msgspec import Meta, field

from agent.buffer_port import BufferLimits, FullPolicy
from agent.errors import ConfigError
from agent.protocol import _ID_RE, MAX_READINGS_PER_BATCH, Encoding
from agent.validation import FieldProblem, Strict, convert, describe

ENV_PREFIX = "TALLY_AGENT_"
_SECTIONS = ("broker", "buffer", "batch")
_NOT_OVERRIDES = {"TALLY_AGENT_CONFIG"}  # the CLI's default --config
_SOURCE_FIELDS = ("type", "name", "interval_s")
_ID_PROBLEM = "must be 1-64 characters of [A-Za-z0-9._:-]"
# the spellings of a boolean an environment override may use
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


class BrokerConfig(Strict, frozen=True, kw_only=True):
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
    keepalive_s: Annotated[int, Meta(ge=5, le=3600)] = 30
    connect_timeout_s: Annotated[float, Meta(gt=0, le=120)] = 10.0
    reconnect_min_s: Annotated[float, Meta(gt=0)] = 0.5
    reconnect_max_s: Annotated[float, Meta(gt=0)] = 60.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise FieldProblem("url", "must look like mqtt://host:port or mqtts://host:port")
        try:
            _ = parts.port
        except ValueError as exc:
            raise FieldProblem("url", f"bad port: {exc}") from exc

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


class BufferConfig(Strict, frozen=True, kw_only=True):
    """The durable SQLite buffer."""

    path: Path = Path("/var/lib/tally-agent/buffer.db")
    max_readings: Annotated[int, Meta(ge=1)] | None = 10_000_000
    max_bytes: Annotated[int, Meta(ge=65_536)] | None = None
    policy: FullPolicy = FullPolicy.DROP_OLDEST

    def limits(self) -> BufferLimits:
        return BufferLimits(self.max_readings, self.max_bytes, self.policy)


class BatchConfig(Strict, frozen=True, kw_only=True):
    """How readings are grouped into published batches, and when a batch may be forgotten.

    ``confirm = "collector"`` (the default): a batch is deleted only when the collector
    acknowledges, after its database commit, on ``tally/v1/<device>/ack``; PUBACK only marks it
    sent. At most ``window`` batches are sent and unconfirmed at once; one unconfirmed after
    ``confirm_timeout_s`` (or after any reconnect) is sent again. ``"broker"`` deletes on PUBACK
    (for a collector that does not acknowledge; loses what a crashing broker had not saved).
    """

    max_readings: Annotated[int, Meta(ge=1, le=MAX_READINGS_PER_BATCH)] = 1000
    max_age_s: Annotated[float, Meta(gt=0, le=86_400)] = 10.0
    in_flight: Annotated[int, Meta(ge=1, le=64)] = 8
    window: Annotated[int, Meta(ge=1, le=1024)] = 32
    confirm_timeout_s: Annotated[float, Meta(gt=0, le=86_400)] = 30.0
    confirm: Literal["collector", "broker"] = "collector"


class SourceConfig(Strict, frozen=True, kw_only=True):
    """One ``[[sources]]`` entry: common fields; every other key is a type-specific option.

    In the file the options sit beside ``type``, ``name`` and ``interval_s``; ``parse_source``
    gathers them into ``options`` (validated later, by the source type that uses them).
    """

    type: Annotated[str, Meta(min_length=1)]
    name: str
    interval_s: Annotated[float, Meta(gt=0, le=86_400)]
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.name):
            raise FieldProblem("name", _ID_PROBLEM)


class AgentConfig(Strict, frozen=True, kw_only=True):
    """The whole agent configuration."""

    device_id: str
    encoding: Encoding = Encoding.JSON
    status_interval_s: Annotated[float, Meta(gt=0, le=86_400)] = 30.0
    shutdown_timeout_s: Annotated[float, Meta(ge=0, le=600)] = 10.0
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    sources: list[SourceConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.device_id):
            raise FieldProblem("device_id", _ID_PROBLEM)
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise FieldProblem(
                "sources", f"source names must be unique; repeated: {', '.join(dupes)}"
            )


def _fields(struct: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    return {f.name: f for f in msgspec.structs.fields(struct)}


def _env_value(info: msgspec.structs.FieldInfo, value: str) -> object:
    """An override's string as the field takes it: "" clears an optional field."""
    if value == "":
        return None
    if info.type is bool and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    return value


def _apply_env(doc: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    top = set(_fields(AgentConfig)) - {*_SECTIONS, "sources"}
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
    for key, value in sorted(env.items()):
        if not key.startswith(ENV_PREFIX) or key in _NOT_OVERRIDES:
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name in top:
            out[name] = value
            continue
        section, _, setting = name.partition("_")
        sections: dict[str, type[msgspec.Struct]] = {
            "broker": BrokerConfig, "buffer": BufferConfig, "batch": BatchConfig
        }
        struct = sections.get(section)
        info = _fields(struct).get(setting) if struct is not None else None
        if info is None:
            raise ConfigError(f"{key}: no such setting to override")
        sub = out.setdefault(section, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{section}: must be a table")
        sub[setting] = _env_value(info, value)
    return out


def _source_doc(entry: object) -> object:
    """A ``[[sources]]`` entry with its type-specific keys gathered under ``options``."""
    if not isinstance(entry, Mapping):
        return entry  # reported by the validation, with its position
    common = {k: entry[k] for k in _SOURCE_FIELDS if k in entry}
    return {**common, "options": {k: v for k, v in entry.items() if k not in _SOURCE_FIELDS}}


def parse_source(entry: object, *, at: str = "") -> SourceConfig:
    """One ``[[sources]]`` entry (as read from TOML or JSON); ``ConfigError`` names the field.

    ``at`` is where the entry sits in its document (``sources[2]``), for the message.
    """
    try:
        return convert(_source_doc(entry), SourceConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid source: {describe(exc, SourceConfig, at=at)}") from exc


def parse_config(doc: Mapping[str, Any], env: Mapping[str, str] | None = None) -> AgentConfig:
    """Validate a config mapping (as read from TOML) after applying environment overrides."""
    merged = _apply_env(dict(doc), env or {})
    sources = merged.get("sources")
    if isinstance(sources, list):
        merged["sources"] = [_source_doc(s) for s in sources]
    try:
        return convert(merged, AgentConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid agent configuration: {describe(exc, AgentConfig)}") from exc


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
