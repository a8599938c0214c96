"""Run a planned fleet: one real agent pipeline per device, all in one asyncio loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from agent import __version__
from agent.buffer import SqliteBuffer
from agent.clock import to_ms
from agent.config import AgentConfig, parse_config
from agent.protocol import status_topic
from agent.publisher import MqttPublisher
from agent.runner import Agent
from agent.sqlite_threads import SqliteThreads
from agent.status import offline_status

from .clocks import CompressedClock
from .meters import FleetMeter
from .plan import DevicePlan


@dataclass(slots=True)
class FleetRun:
    """What the fleet did (the meters' own count is the ground truth for readings taken)."""

    devices: int = 0
    polls: int = 0  # readings the meters produced (one per poll)
    restarts: int = 0  # agents stopped for an outage and started again
    jumps: int = 0
    resets: int = 0
    rollovers: int = 0
    lost_at_edge: int = 0  # readings agents reported they could not store
    wall_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the hosting process(es), filled in by the caller
    peak_rss_mb: float = 0.0  # their peak resident memory (summed over processes)
    errors: list[str] = field(default_factory=list)


class _CountingMeter(FleetMeter):
    def __init__(self, meter: FleetMeter, run: FleetRun) -> None:
        super().__init__(meter.spec)
        self._run = run

    def advance(self, now: datetime) -> float:
        self._run.polls += 1
        return super().advance(now)


def agent_config(device: str, mqtt_url: str, buffer: Path, *, status_s: float,
                 batch_age_s: float) -> AgentConfig:
    return parse_config({
        "device_id": device, "status_interval_s": status_s, "shutdown_timeout_s": 60,
        "broker": {"url": mqtt_url, "reconnect_min_s": 0.2, "reconnect_max_s": 5,
                   "keepalive_s": 30},
        "buffer": {"path": str(buffer)},
        "batch": {"max_readings": 200, "max_age_s": batch_age_s, "in_flight": 4,
                  "confirm_timeout_s": 20},
        "sources": [],
    })


async def _run_agent(cfg: AgentConfig, clock: CompressedClock, meters: Sequence[FleetMeter],
                     stop: asyncio.Event, threads: SqliteThreads | None) -> int:
    buffer = await SqliteBuffer.open(
        Path(cfg.buffer.path), device_id=cfg.device_id, now_ms=to_ms(clock.now()),
        limits=cfg.buffer.limits(),
        **({} if threads is None else {"connect": threads.connect}))
    publisher = MqttPublisher(
        client_id=cfg.device_id, broker=cfg.broker, will_topic=status_topic(cfg.device_id),
        will_payload=offline_status(device=cfg.device_id, version=__version__,
                                    reason="connection lost", now_ms=None),
        max_in_flight=cfg.batch.in_flight + 4,
    )
    agent = Agent(cfg, buffer=buffer, publisher=publisher, sources=meters, clock=clock)
    return await agent.run(stop)


async def _device(plan: DevicePlan, cfg: AgentConfig, clock: CompressedClock, *,
                  meters: Sequence[FleetMeter], stop: asyncio.Event, run: FleetRun,
                  threads: SqliteThreads | None) -> None:
    t0 = time.monotonic()

    async def jump() -> None:
        await asyncio.sleep(plan.jump_after_s)
        clock.jump(plan.clock_jump_s)
        run.jumps += 1

    jumper = asyncio.create_task(jump()) if plan.clock_jump_s else None
    try:
        if plan.outage is not None:
            down = asyncio.Event()
            first = asyncio.create_task(_run_agent(cfg, clock, meters, down, threads))
            await asyncio.sleep(plan.outage[0])
            down.set()
            run.lost_at_edge += await first
            await asyncio.sleep(max(t0 + plan.outage[0] + plan.outage[1] - time.monotonic(), 0))
            run.restarts += 1
        if not stop.is_set():
            run.lost_at_edge += await _run_agent(cfg, clock, meters, stop, threads)
    except Exception as exc:  # one device's failure is reported, not fatal
        run.errors.append(f"{plan.device_id}: {type(exc).__name__}: {exc}")
    finally:
        if jumper is not None:
            jumper.cancel()


async def run_fleet(
    plans: Sequence[DevicePlan], *, mqtt_url: str, workdir: Path, start: datetime,
    factor: float, duration_s: float, status_s: float = 5.0, batch_age_s: float = 1.0,
    ramp_s: float = 5.0, sqlite_threads: int | None = None,
) -> FleetRun:
    """Run every planned device for ``duration_s`` real seconds, then stop them all cleanly
    (each flushes, waits for its confirmations and publishes its farewell).

    ``sqlite_threads``: the agents' buffers share this many SQLite threads
    (``agent.sqlite_threads``; for thousands of agents per process, where a thread each
    starves the process); None gives each buffer a thread of its own, as a deployed agent
    has (faster for a few hundred agents: more fsyncs overlap).
    """
    threads = None if sqlite_threads is None else SqliteThreads(sqlite_threads).start()
    try:
        return await _run_fleet(plans, mqtt_url=mqtt_url, workdir=workdir, start=start,
                                factor=factor, duration_s=duration_s, status_s=status_s,
                                batch_age_s=batch_age_s, ramp_s=ramp_s, threads=threads)
    finally:
        if threads is not None:
            await asyncio.to_thread(threads.close)


async def _run_fleet(
    plans: Sequence[DevicePlan], *, mqtt_url: str, workdir: Path, start: datetime,
    factor: float, duration_s: float, status_s: float, batch_age_s: float, ramp_s: float,
    threads: SqliteThreads | None,
) -> FleetRun:
    run = FleetRun(devices=len(plans))
    stop = asyncio.Event()
    began = time.monotonic()
    tasks = []
    for n, plan in enumerate(plans):
        buffer = workdir / plan.device_id / "buffer.db"
        buffer.parent.mkdir(parents=True, exist_ok=True)
        cfg = agent_config(plan.device_id, mqtt_url, buffer, status_s=status_s,
                           batch_age_s=batch_age_s)
        meters = [_CountingMeter(FleetMeter(spec), run) for spec in plan.meters]
        run.resets += sum(1 for s in plan.meters if s.reset_at_poll is not None)
        run.rollovers += sum(1 for s in plan.meters if s.rollover_kwh is not None)
        clock = CompressedClock(start, factor)
        device = _device(plan, cfg, clock, meters=meters, stop=stop, run=run, threads=threads)
        tasks.append(asyncio.create_task(device))
        if ramp_s and n % 50 == 49:  # spread the connects, as a real fleet does
            await asyncio.sleep(ramp_s * 50 / len(plans))
    await asyncio.sleep(max(began + duration_s - time.monotonic(), 0))
    stop.set()
    await asyncio.gather(*tasks)
    run.wall_s = time.monotonic() - began
    return run
