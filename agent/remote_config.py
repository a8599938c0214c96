"""Remote configuration: the retained document on ``tally/v1/<device>/config`` (pure parsing).

``{"v": 1, "device_id": …, "version": n, "issued_at": …, "sources": [...]}``. A document is
applied only if it is for this device and newer than the version the agent runs; its sources
are validated exactly like the ``[[sources]]`` of the configuration file. The applied document
is kept next to the buffer so a restart runs the same configuration (``load_applied``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from agent.config import SourceConfig, parse_source
from agent.errors import ConfigError

__all__ = ["RemoteConfig", "applied_path", "load_applied", "parse_remote_config"]


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    version: int
    sources: tuple[SourceConfig, ...]
    raw: bytes


def parse_remote_config(payload: bytes, device_id: str) -> RemoteConfig:
    """Validate a config document; raises ``ConfigError`` with the reason."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"remote config is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise ConfigError("remote config: not a version 1 document")
    if doc.get("device_id") != device_id:
        raise ConfigError(f"remote config is for {doc.get('device_id')!r:.80}, not {device_id}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError("remote config: version must be a positive integer")
    raw_sources = doc.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError("remote config: sources must be a non-empty list")
    try:
        sources = tuple(parse_source(s, at=f"sources[{i}]") for i, s in enumerate(raw_sources))
    except ConfigError as exc:
        raise ConfigError(f"remote config: {exc}") from exc
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError("remote config: source names must be unique")
    return RemoteConfig(version, sources, bytes(payload))


def applied_path(buffer_path: Path) -> Path:
    return buffer_path.with_name(buffer_path.name + ".config.json")


def load_applied(buffer_path: Path, device_id: str) -> RemoteConfig | None:
    """The last applied remote config, if any (a damaged file is ignored: the retained
    message is delivered again on connect)."""
    path = applied_path(buffer_path)
    try:
        return parse_remote_config(path.read_bytes(), device_id)
    except (OSError, ConfigError):
        return None
