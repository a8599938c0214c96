"""A real agent process whose meters keep their own log: the ground truth of the fault tests.

    python -m tests.faults.meter_agent DEVICE BROKER_URL WORKDIR [METERS] [INTERVAL_S] [BUFFER_DIR]

Each simulated meter counts 1, 2, 3, … and appends every value it generates to
``WORKDIR/<meter>.log`` (flushed) *before* handing it to the agent, and continues from its
log after a restart. The tests count what reached PostgreSQL against these logs, never against
the agent's or the collector's own counters. The agent is the production ``Agent`` with the
SQLite buffer (in ``BUFFER_DIR``, default ``WORKDIR``: a small filesystem of its own lets a
test fill the agent's disk) and the paho publisher; only the sources are these meters.

The agent's wall clock can jump: it is the system clock plus the offset in seconds written in
``WORKDIR/clock_offset_s``, read at start and again on SIGUSR1 (``WORKDIR/ready`` holds the
pid once the signal handlers are in place) (monotonic time does not jump, as
on a device whose clock is stepped). A meter stamps its values from its own register time, so a
jump moves what the agent stamps (seal times, status, a new buffer's first seq), not the
readings.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.buffer import SqliteBuffer
from agent.clock import to_ms
from agent.config import parse_config
from agent.protocol import Kind, Reading
from agent.publisher import MqttPublisher
from agent.runner import Agent

T_BASE_MS = 1_764_547_200_000  # 2025-12-01: value n of a meter is stamped T_BASE_MS + n s


class LoggedMeter:
    """A register that grows by 1 per poll and logs each value before it is handed over."""

    def __init__(self, name: str, interval_s: float, log: Path) -> None:
        self._name, self._interval = name, interval_s
        self._log = log
        self._n = len(log.read_text().split()) if log.exists() else 0
        self._out = log.open("a", encoding="utf-8")

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval

    async def read(self, now: datetime) -> Sequence[Reading]:
        self._n += 1
        self._out.write(f"{self._n}\n")
        self._out.flush()
        return [Reading(self._name, "energy", "kWh", Kind.CUMULATIVE,
                        T_BASE_MS + self._n * 1000, float(self._n))]

    async def close(self) -> None:
        self._out.close()


class JumpingClock:
    """The system clock shifted by an offset a test sets (``reload`` reads it again)."""

    def __init__(self, offset_file: Path) -> None:
        self._file = offset_file
        self._offset = timedelta(0)
        self.reload()

    def reload(self) -> None:
        text = self._file.read_text(encoding="utf-8").strip() if self._file.exists() else ""
        self._offset = timedelta(seconds=float(text or 0))

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def monotonic(self) -> float:
        return time.monotonic()


async def main(device: str, url: str, work: Path, meters: int, interval_s: float,
               buffer_dir: Path) -> int:
    cfg = parse_config({
        "device_id": device, "status_interval_s": 1, "shutdown_timeout_s": 20,
        "broker": {"url": url, "reconnect_min_s": 0.1, "reconnect_max_s": 1.0, "keepalive_s": 5},
        "buffer": {"path": str(buffer_dir / "buffer.db")},
        "batch": {"max_readings": 50, "max_age_s": 0.1, "in_flight": 8, "window": 32,
                  "confirm_timeout_s": 3},
    })
    clock = JumpingClock(work / "clock_offset_s")
    buffer = await SqliteBuffer.open(buffer_dir / "buffer.db", device_id=device,
                                     now_ms=to_ms(clock.now()), limits=cfg.buffer.limits())
    publisher = MqttPublisher(client_id=device, broker=cfg.broker, max_in_flight=16)
    sources = [LoggedMeter(f"m{i}", interval_s, work / f"m{i}.log") for i in range(meters)]
    agent = Agent(cfg, buffer=buffer, publisher=publisher, sources=sources, clock=clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, clock.reload)
    (work / "ready").write_text(f"{os.getpid()}\n", encoding="utf-8")  # signals are safe now
    return await agent.run(stop)


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(asyncio.run(main(args[0], args[1], Path(args[2]),
                              int(args[3]) if len(args) > 3 else 2,
                              float(args[4]) if len(args) > 4 else 0.01,
                              Path(args[5]) if len(args) > 5 else Path(args[2]))))
