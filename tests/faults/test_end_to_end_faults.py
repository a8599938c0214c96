"""Zero lost, zero duplicated, end to end, whatever is killed: counted against the meters' logs.

Each trial runs three real agent processes (``tests/faults/meter_agent.py``: two meters each,
every generated value written to the meter's own log first), a private Mosquitto started from a
config file written here, two collector processes on one shared subscription, and the test's
PostgreSQL. Mid-stream one part fails hard: the broker is killed -9 (persistence off; or on with
a one-hour autosave, so everything since its start is lost; or after both collectors have been
away for 3 s, so the broker dies holding their queues), a collector or an agent is killed -9
and restarted, or PostgreSQL is cut off through a proxy. Afterwards every value in every meter's
log must be in ``readings`` exactly once. The only values allowed to be missing are, for an agent
killed -9, the last value each of its meters logged before the kill: generated, but not yet
committed to the agent's buffer, i.e. never taken (the register itself still holds it).
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from agent.buffer_inspect import inspect_buffer
from collector.embedded.broker import free_port, wait_for_port
from collector.storage.migrate import migrate
from tests.support.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
AGENTS = 3
METERS = 2


class Mosquitto:
    """A private Mosquitto from a config file of our own; ``kill9`` and ``start`` again."""

    def __init__(self, work: Path, *, persistence: bool, autosave_s: int = 3600) -> None:
        self.port = free_port()
        work.mkdir(parents=True, exist_ok=True)
        self.conf = work / "mosquitto.conf"
        self.conf.write_text(
            # as root, mosquitto would drop to user "mosquitto", who cannot write `work`
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {work}/\nautosave_interval {autosave_s}\n"
            "max_queued_messages 1000000\nmax_inflight_messages 100\nlog_dest none\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Trial:
    """The processes of one trial and the ground truth they leave behind."""

    def __init__(self, tmp: Path, db: str, broker: Mosquitto) -> None:
        self.tmp, self.db, self.broker = tmp, db, broker
        self.prefix = f"ft-{uuid.uuid4().hex[:6]}"
        self.collectors: dict[str, subprocess.Popen[bytes]] = {}
        self.agents: dict[int, subprocess.Popen[bytes]] = {}
        self.never_taken: set[tuple[str, str, int]] = set()
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def device(self, i: int) -> str:
        return f"{self.prefix}-{i}"

    def start_collector(self, name: str) -> None:
        env = {**self.env, "TALLY_DATABASE_URL": self.db, "TALLY_MQTT_URL": self.broker.url,
               "TALLY_MQTT_CLIENT_ID": f"{self.prefix}-{name}",
               "TALLY_MQTT_SHARED_GROUP": "ingest", "TALLY_INGEST_USAGE_REFRESH_S": "0",
               # unenrolled agents: identity is tested in tests/collector/devices
               "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true"}
        with (self.tmp / f"{name}.log").open("ab") as log:
            self.collectors[name] = subprocess.Popen(
                [sys.executable, "-m", "collector", "--log-level", "WARNING", "run", "--no-api"],
                cwd=ROOT, env=env, stdout=log, stderr=log)

    def start_agent(self, i: int) -> None:
        work = self.tmp / self.device(i)
        work.mkdir(exist_ok=True)
        with (work / "agent.log").open("ab") as log:
            self.agents[i] = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.meter_agent", self.device(i),
                 self.broker.url, str(work), str(METERS), "0.005"],
                cwd=ROOT, env=self.env, stdout=log, stderr=log)

    def kill9_agent(self, i: int) -> None:
        self.agents[i].send_signal(signal.SIGKILL)
        self.agents[i].wait(10)
        for meter, values in self.logged(i).items():
            if values:  # the poll running at the kill may not have reached the buffer
                self.never_taken.add((self.device(i), meter, values[-1]))

    def logged(self, i: int) -> dict[str, list[int]]:
        work = self.tmp / self.device(i)
        return {f"m{m}": [int(x) for x in (work / f"m{m}.log").read_text().split()]
                for m in range(METERS) if (work / f"m{m}.log").exists()}

    def stored(self) -> Counter[tuple[str, str, int]]:
        with psycopg.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT s.device_id, s.meter, r.value::bigint, count(*) FROM readings r"
                " JOIN series s USING (series_id) WHERE s.device_id LIKE %s GROUP BY 1, 2, 3",
                (f"{self.prefix}-%",),
            ).fetchall()
        return Counter({(str(d), str(m), int(v)): int(n) for d, m, v, n in rows})

    def stop_agents(self) -> None:
        for proc in self.agents.values():
            proc.send_signal(signal.SIGTERM)
        for i, proc in self.agents.items():
            code = proc.wait(40)
            log = (self.tmp / self.device(i) / "agent.log").read_text()
            assert code == 0, log[-3000:]

    def drain(self) -> None:
        """A SIGTERM that ran out of shutdown time leaves unconfirmed batches in the buffer
        (kept, not lost): start such an agent again until its buffer is empty."""
        for i in self.agents:
            buffer = self.tmp / self.device(i) / "buffer.db"
            for _ in range(3):
                if inspect_buffer(buffer).depth == 0:
                    break
                self.start_agent(i)
                time.sleep(3.0)  # its backlog is re-sent and confirmed
                self.stop_agents_of([i])
            assert inspect_buffer(buffer).depth == 0

    def stop_agents_of(self, which: list[int]) -> None:
        for i in which:
            self.agents[i].send_signal(signal.SIGTERM)
        for i in which:
            assert self.agents[i].wait(40) == 0

    def close(self) -> None:
        for proc in [*self.agents.values(), *self.collectors.values()]:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def wait_until(pred: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


FAULTS = ["broker-kill9-no-persistence", "broker-kill9-autosave-3600s", "collector-kill9",
          "agent-kill9", "postgres-cut", "collectors-away-then-broker-kill9"]


@pytest.fixture
def trial_parts(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str,
                tcp_proxy: Callable[[str, int], TcpProxy]) -> Iterator[tuple[Trial, TcpProxy]]:
    migrate(pg_url, use_timescale=False)
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    proxy = tcp_proxy(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    info.update(host="127.0.0.1", port=str(proxy.port))
    db = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
    broker = Mosquitto(tmp_path / "broker", persistence=request.param != FAULTS[0])
    broker.start()
    trial = Trial(tmp_path, db, broker)
    try:
        yield trial, proxy
    finally:
        trial.close()
        broker.stop()


@pytest.mark.parametrize("trial_parts", FAULTS, indirect=True)
def test_nothing_lost_nothing_duplicated(trial_parts: tuple[Trial, TcpProxy],
                                         request: pytest.FixtureRequest) -> None:
    """Under load from three agents, one hard fault mid-stream; then every logged value is
    stored exactly once."""
    trial, proxy = trial_parts
    fault = request.node.callspec.params["trial_parts"]
    trial.start_collector("a")
    trial.start_collector("b")
    for i in range(AGENTS):
        trial.start_agent(i)
    assert wait_until(lambda: len({d for d, _, _ in trial.stored()}) == AGENTS, 60)
    time.sleep(1.5)
    if fault.startswith("broker"):
        trial.broker.kill9()
        time.sleep(1.0)
        trial.broker.start()
    elif fault == "collector-kill9":
        trial.collectors["a"].send_signal(signal.SIGKILL)
        trial.collectors["a"].wait(10)
        time.sleep(1.0)
        trial.start_collector("a")
    elif fault == "collectors-away-then-broker-kill9":
        for name in ("a", "b"):  # the broker queues for their sessions, in memory only…
            trial.collectors[name].send_signal(signal.SIGKILL)
            trial.collectors[name].wait(10)
        time.sleep(3.0)
        trial.broker.kill9()  # …and loses the queue (autosave every hour)
        time.sleep(0.5)
        trial.broker.start()
        trial.start_collector("a")
        trial.start_collector("b")
    elif fault == "agent-kill9":
        trial.kill9_agent(0)
        time.sleep(1.0)
        trial.start_agent(0)
    else:
        proxy.cut()
        time.sleep(3.0)
        proxy.restore()
    time.sleep(2.0)
    trial.stop_agents()
    trial.drain()

    produced = {(trial.device(i), meter, v) for i in range(AGENTS)
                for meter, values in trial.logged(i).items() for v in values}
    expected = produced - trial.never_taken
    assert len(produced) > AGENTS * METERS * 500  # real load: thousands of readings

    def settled() -> bool:
        return expected <= set(trial.stored())

    wait_until(settled, 30)
    stored = trial.stored()
    lost = sorted(expected - set(stored))
    duplicated = sorted(k for k, n in stored.items() if n > 1)
    unknown = sorted(set(stored) - produced)
    assert lost == [], f"{len(lost)} lost, e.g. {lost[:5]}"
    assert duplicated == [], f"{len(duplicated)} duplicated, e.g. {duplicated[:5]}"
    assert unknown == []
