"""The demo's simulated fleet: one agent configuration per device, run as asyncio tasks.

Every device has an energy, a water and a data meter (the agent's built-in ``simulated-*``
sources) polled every ``interval_s`` seconds, and its own SQLite buffer under
``<workdir>/agents/<device>/buffer.db`` so a restarted demo carries on where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig, parse_config
from agent.runner import run_agent

__all__ = ["Fleet", "FleetSpec", "agent_configs", "device_ids"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """What the simulated fleet looks like."""

    devices: int
    prefix: str
    interval_s: float
    mqtt_url: str
    agents_dir: Path
    shutdown_timeout_s: float = 5.0


def device_ids(spec: FleetSpec) -> list[str]:
    """``<prefix>-01`` .. ``<prefix>-NN``."""
    width = max(2, len(str(spec.devices)))
    return [f"{spec.prefix}-{i:0{width}d}" for i in range(1, spec.devices + 1)]


def agent_configs(spec: FleetSpec) -> list[AgentConfig]:
    """One validated agent configuration per simulated device."""
    out = []
    for n, device in enumerate(device_ids(spec)):
        out.append(parse_config({
            "device_id": device,
            "status_interval_s": 2,
            "shutdown_timeout_s": spec.shutdown_timeout_s,
            "broker": {"url": spec.mqtt_url, "reconnect_min_s": 0.2, "reconnect_max_s": 5,
                       "keepalive_s": 15},
            "buffer": {"path": str(spec.agents_dir / device / "buffer.db")},
            "batch": {"max_readings": 500, "max_age_s": spec.interval_s, "in_flight": 8},
            "sources": [
                {"type": "simulated-energy", "name": "energy", "interval_s": spec.interval_s,
                 "seed": n, "base_kw": 2.0 + n, "peak_kw": 8.0 + 2 * n},
                {"type": "simulated-water", "name": "water", "interval_s": spec.interval_s,
                 "seed": n, "daily_m3": 0.2 + 0.05 * n},
                {"type": "simulated-data", "name": "data", "interval_s": spec.interval_s,
                 "seed": n, "daily_gb": 2.0 + n},
            ],
        }))
    return out


class Fleet:
    """The agents of the demo as tasks on the running loop; ``stop`` flushes and waits."""

    def __init__(self, configs: Sequence[AgentConfig]) -> None:
        self._configs = list(configs)
        self._stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[int]] = {}

    @property
    def devices(self) -> list[str]:
        return [c.device_id for c in self._configs]

    def start(self) -> None:
        for cfg in self._configs:
            task = asyncio.create_task(run_agent(cfg, self._stop), name=f"agent-{cfg.device_id}")
            task.add_done_callback(self._report)
            self._tasks[cfg.device_id] = task

    @staticmethod
    def _report(task: asyncio.Task[int]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _log.error("%s stopped with an error: %s", task.get_name(), task.exception())

    async def stop(self, timeout_s: float) -> None:
        """Ask every agent to flush and stop; cancel those still running after ``timeout_s``."""
        self._stop.set()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
