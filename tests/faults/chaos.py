"""Chaos runner: random hard faults during sustained load, each trial checked end to end.

    python -m tests.faults.chaos --trials 1000 [--seed 1] [--database-url URL] [--report F]

Everything runs on private servers: a Mosquitto of its own (free port), two collector
processes on one shared subscription, three real agent processes (``tests/faults/meter_agent``,
meters that log every value first: the ground truth), and a fresh database reached through a
TCP proxy the runner cuts. The collectors and the broker live across trials; one trial:

1. the agents start (continuing their meters' logs and buffer files) and load the system at
   ~1,200 readings/s;
2. 1-3 faults drawn at random, at random moments: kill -9 of the broker (persistence off), of a
   collector, of an agent (each restarted after a random pause), a PostgreSQL network cut of
   0.5-3 s;
3. the agents stop cleanly; the trial passes when every value in every meter's log (except, for
   an agent killed -9, the value its poll held at the kill: never taken) is in ``readings``
   exactly once **and** ``tally-collector reconcile`` for the fleet finds nothing lost or
   counted twice.

The test suite runs a short mode (``test_chaos.py``); this module's ``main`` is the long mode.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from collector.reconcile.gather import reconcile
from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from tests.faults.test_end_to_end_faults import AGENTS, Mosquitto, Trial, wait_until
from tests.support.proxy import TcpProxy

_STARTUP_S = 3.0  # an agent process is up and polling within this
FAULTS = ("broker-kill9", "collector-kill9", "agent-kill9", "postgres-cut")


@dataclass(slots=True)
class ChaosReport:
    trials: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    readings: int = 0
    lost: int = 0
    duplicated: int = 0
    reconcile_failures: int = 0
    agent_failures: int = 0  # agents that exited non-zero on a clean stop (code 3: lost)
    failed_trials: list[str] = field(default_factory=list)
    wall_s: float = 0.0


class Chaos:
    """One long-lived system under test (broker, proxy, two collectors, three agents)."""

    def __init__(self, work: Path, db: str, proxy: TcpProxy, rng: random.Random) -> None:
        self.work, self.proxy, self.rng = work, proxy, rng
        self.broker = Mosquitto(work / "broker", persistence=False)
        self.broker.start()
        self.trial = Trial(work, db, self.broker)
        self.trial.start_collector("a")
        self.trial.start_collector("b")
        self.direct_db = db
        self._started = 0.0

    def close(self) -> None:
        self.trial.close()
        self.broker.stop()

    def _fault(self, name: str) -> None:
        t = self.trial
        pause = self.rng.uniform(0.2, 1.5)
        if name == "broker-kill9":
            self.broker.kill9()
            time.sleep(pause)
            self.broker.start()
        elif name == "collector-kill9":
            which = self.rng.choice(("a", "b"))
            t.collectors[which].send_signal(signal.SIGKILL)
            t.collectors[which].wait(10)
            time.sleep(pause)
            t.start_collector(which)
        elif name == "agent-kill9":
            i = self.rng.randrange(AGENTS)
            t.kill9_agent(i)
            time.sleep(pause)
            t.start_agent(i)
            self._started = time.monotonic()
        else:
            self.proxy.cut()
            time.sleep(self.rng.uniform(0.5, 3.0))
            self.proxy.restore()

    def run_trial(self, report: ChaosReport, log: Callable[[str], None]) -> None:
        t = self.trial
        counts = [sum(len(v) for v in t.logged(i).values()) for i in range(AGENTS)]
        for i in range(AGENTS):
            t.start_agent(i)
            self._started = time.monotonic()
        wait_until(lambda: all(sum(len(v) for v in t.logged(i).values()) >= counts[i] + 200
                               for i in range(AGENTS)), 30)  # under load before any fault
        faults = [self.rng.choice(FAULTS) for _ in range(self.rng.randint(1, 3))]
        for name in faults:
            time.sleep(self.rng.uniform(0.3, 2.0))
            self._fault(name)
            report.faults[name] += 1
        time.sleep(self.rng.uniform(0.5, 1.5))
        # an agent signalled before its handlers exist (still importing) dies with -15
        time.sleep(max(self._started + _STARTUP_S - time.monotonic(), 0))
        exits = self._stop_agents()
        produced = {(t.device(i), meter, v) for i in range(AGENTS)
                    for meter, values in t.logged(i).items() for v in values}
        expected = produced - t.never_taken
        wait_until(lambda: expected <= set(t.stored()), 60)
        stored = t.stored()
        lost = len(expected - set(stored))
        duplicated = sum(n - 1 for n in stored.values() if n > 1)
        devices = [t.device(i) for i in range(AGENTS)]
        wait_until(lambda: self._farewells(devices), 30)
        pool = open_pool(self.direct_db, min_size=1, max_size=1)
        try:
            fleet = reconcile(pool, devices)
        finally:
            pool.close()
        report.trials += 1
        report.readings = len(produced)
        report.lost += lost
        report.duplicated += duplicated
        if not fleet.ok:
            report.reconcile_failures += 1
        bad_exit = [c for c in exits if c not in {0, -signal.SIGTERM}]
        report.agent_failures += len(bad_exit)
        verdict = "ok" if lost == 0 and duplicated == 0 and fleet.ok and not bad_exit else "FAIL"
        if verdict == "FAIL":
            report.failed_trials.append(
                f"trial {report.trials}: faults={faults} lost={lost} duplicated={duplicated}"
                f" reconcile_ok={fleet.ok} agent_exits={exits}")
        log(f"trial {report.trials}: {'+'.join(faults)} readings so far={len(produced)} "
            f"lost={lost} duplicated={duplicated} reconcile={'ok' if fleet.ok else 'FAIL'}"
            f" {verdict}")

    def _stop_agents(self) -> list[int]:
        """SIGTERM every agent; one that died of it before installing its handlers counts as
        killed (its meters' last values may never have been taken)."""
        t = self.trial
        for proc in t.agents.values():
            proc.send_signal(signal.SIGTERM)
        codes = []
        for i, proc in t.agents.items():
            code = proc.wait(60)
            if code == -signal.SIGTERM:
                for meter, values in t.logged(i).items():
                    if values:
                        t.never_taken.add((t.device(i), meter, values[-1]))
            codes.append(code)
        return codes

    def _farewells(self, devices: list[str]) -> bool:
        with psycopg.connect(self.direct_db) as conn:
            row = conn.execute(
                "SELECT count(*) FROM device_status WHERE device_id = ANY(%s)"
                " AND state = 'offline' AND payload ? 'reconciliation'", (devices,)).fetchone()
        return row is not None and int(row[0]) == len(devices)


def run_chaos(*, trials: int, seed: int, db_direct: str, work: Path,
              log: Callable[[str], None] = print, budget_s: float | None = None) -> ChaosReport:
    """``trials`` trials (or fewer when ``budget_s`` runs out) on a migrated database."""
    info = psycopg.conninfo.conninfo_to_dict(db_direct)
    proxy = TcpProxy(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    info.update(host="127.0.0.1", port=str(proxy.port))
    via_proxy = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
    report = ChaosReport()
    began = time.monotonic()
    chaos = Chaos(work, via_proxy, proxy, random.Random(seed))
    chaos.direct_db = db_direct  # checks read directly, never through the cut proxy
    try:
        for _ in range(trials):
            if budget_s is not None and time.monotonic() - began > budget_s:
                break
            chaos.run_trial(report, log)
    finally:
        chaos.close()
        proxy.close()
        report.wall_s = time.monotonic() - began
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget-s", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                    help="server to create a fresh database on (dropped afterwards)")
    ap.add_argument("--report", type=Path, help="write the report as JSON here")
    args = ap.parse_args()
    import uuid  # noqa: PLC0415

    name = f"tally_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(args.database_url)
    info["dbname"] = name
    db = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
    try:
        migrate(db, use_timescale=False)
        with tempfile.TemporaryDirectory(prefix="tally-chaos-") as tmp:
            report = run_chaos(trials=args.trials, seed=args.seed, db_direct=db,
                               work=Path(tmp), budget_s=args.budget_s,
                               log=lambda s: print(s, flush=True))
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    doc = {"trials": report.trials, "faults": report.faults, "readings": report.readings,
           "lost": report.lost, "duplicated": report.duplicated,
           "reconcile_failures": report.reconcile_failures,
           "agent_failures": report.agent_failures,
           "failed_trials": report.failed_trials, "wall_s": round(report.wall_s, 1)}
    print(json.dumps(doc))
    if args.report is not None:
        args.report.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    ok = report.lost == 0 and report.duplicated == 0 and report.reconcile_failures == 0 \
        and report.agent_failures == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
