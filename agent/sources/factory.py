"""Build the configured sources: the built-in simulators here, anything else via the bridge."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import datetime

from agent.config import SourceConfig
from agent.errors import ConfigError
from agent.protocol import Reading
from agent.sources.base import Source, StateStore
from agent.sources.simulated import (
    SimulatedDataCounter,
    SimulatedEnergyMeter,
    SimulatedWaterMeter,
)

_BUILTIN: dict[str, Callable[..., Source]] = {
    "simulated-energy": SimulatedEnergyMeter,
    "simulated-water": SimulatedWaterMeter,
    "simulated-data": SimulatedDataCounter,
}


class _Every:
    """A source polled at the configured ``interval_s`` whatever its own default is."""

    def __init__(self, inner: Source, interval_s: float) -> None:
        self._inner = inner
        self._interval_s = interval_s

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def interval_s(self) -> float:
        return self._interval_s

    async def read(self, now: datetime) -> Sequence[Reading]:
        return await self._inner.read(now)

    async def close(self) -> None:
        await self._inner.close()


def build_source(cfg: SourceConfig, state: StateStore) -> Source:
    """One source from its config entry; ConfigError naming the source for bad options."""
    options = cfg.options
    maker = _BUILTIN.get(cfg.type)
    if maker is not None:
        try:
            return maker(cfg.name, cfg.interval_s, state, **options)
        except TypeError as exc:
            raise ConfigError(
                f"source {cfg.name!r} ({cfg.type}): bad options {sorted(options)}: {exc}"
            ) from exc
    try:
        registry = importlib.import_module("firmware_bridge.registry")
    except ImportError as exc:
        raise ConfigError(
            f"unknown source type {cfg.type!r} for source {cfg.name!r} (built in: "
            f"{', '.join(sorted(_BUILTIN))}; firmware_bridge.registry is unavailable: {exc})"
        ) from exc
    build = getattr(registry, "build", None)
    if build is None:
        raise ConfigError("firmware_bridge.registry has no build() function")
    try:
        source: Source = build(cfg.type, cfg.name, {**options, "interval_s": cfg.interval_s},
                               state)
    except ValueError as exc:  # firmware_bridge.errors.BridgeConfigError is a ValueError
        raise ConfigError(str(exc)) from exc
    except ImportError as exc:
        raise ConfigError(
            f"source {cfg.name!r} ({cfg.type}) needs a package that is not installed: {exc}"
        ) from exc
    return source if source.interval_s == cfg.interval_s else _Every(source, cfg.interval_s)


def build_sources(cfgs: list[SourceConfig], state: StateStore) -> list[Source]:
    """Every configured source, in config order."""
    return [build_source(c, state) for c in cfgs]
