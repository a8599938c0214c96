"""Chaos runner: random hard faults during sustained load, the books checked after every trial.

    python -m tests.faults.chaos --trials 1000 [--seed 1] [--report F] [--interval-s 0.02]

Everything runs on private servers (``tests/faults/chaos_system``): a PostgreSQL and a Mosquitto
of the run's own, a proxy in front of each, two collector processes on one shared subscription
and three real agent processes whose meters log every value first (the ground truth), each
agent's buffer on a small tmpfs of its own. The system stays up across trials and is loaded all
the time (3 agents x 2 meters, one value per ``interval_s``: 300 readings/s by default). A trial:

1. one fault, or two overlapping, drawn at random among ``FAULTS``: kill -9 of the broker
   (persistence off), of a collector, of an agent, of PostgreSQL (all its processes; it
   recovers from its WAL); a network cut or a slow link (latency + bandwidth limit, both ways)
   between the collectors and PostgreSQL or between the agents and the broker; an agent's disk
   full (a file fills its tmpfs); an agent's clock jumping forward or back (30 s to 3 days);
2. each held a random 0.2-1.0 s, then healed (restart, restore, free the disk, jump back);
3. once the pipeline is quiet, the books (``tests/faults/chaos_ledger``): every value logged
   so far stored exactly once (except the value an agent killed -9 held: never taken), usage
   derived exactly as the register says, and ``tally-collector reconcile`` for the fleet finds
   nothing lost or counted twice. Every trial checks everything so far.

At the end the agents stop cleanly (exit 0), the books are checked once more, and every meter
is billed (``tests/faults/chaos_billing``: the month closed twice and finalized; each invoice
holds exactly what the register says, nothing billed twice, reconcile clean). The test suite
runs a short mode (``test_chaos.py``: every fault kind at least once); ``main`` is the long mode.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from collector.reconcile.gather import reconcile
from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from tests.faults.chaos_billing import bill_and_compare
from tests.faults.chaos_ledger import Check, Ledger
from tests.faults.chaos_system import FAULTS, PrivatePostgres, System

AGENTS = 3
METERS = 2


@dataclass(slots=True)
class ChaosReport:
    seed: int
    trials: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    readings: int = 0  # values logged by the meters (the ground truth)
    lost: int = 0
    duplicated: int = 0
    usage_mismatches: int = 0
    usage_units_checked: int = 0
    reconcile_runs: int = 0
    reconcile_failures: int = 0
    agent_failures: int = 0  # agents that exited non-zero on the final clean stop
    disk_full_seen: int = 0  # times an agent logged that its buffer's disk was full
    billed_kwh: str = "0"  # at the end: every meter's month closed twice and finalized
    billing_mismatches: int = 0  # meters whose invoice differs from their register
    double_billed: int = 0  # usage lines of one subscription on overlapping invoices
    failed_trials: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    trial_s_max: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.usage_mismatches
                    or self.reconcile_failures or self.agent_failures
                    or self.billing_mismatches or self.double_billed)

    def as_dict(self) -> dict[str, object]:
        doc = asdict(self)
        doc["ok"] = self.ok
        doc["wall_s"] = round(self.wall_s, 1)
        doc["trial_s_mean"] = round(self.wall_s / self.trials, 2) if self.trials else None
        doc["trial_s_max"] = round(self.trial_s_max, 2)
        return doc


class Chaos:
    def __init__(self, system: System, ledger: Ledger, db: str, rng: random.Random,
                 reconcile_every: int = 1) -> None:
        self.system, self.ledger, self.db, self.rng = system, ledger, db, rng
        self.reconcile_every = reconcile_every

    def warm_up(self, per_meter: int = 100) -> None:
        """Every agent up and every meter's first values stored before the first fault."""
        for i in range(len(self.system.devices)):
            self.system.wait_ready(i)
        deadline = time.monotonic() + 60
        while self.ledger.logged_min() < per_meter and time.monotonic() < deadline:
            time.sleep(0.2)
        self.ledger.check()

    def draw(self) -> list[str]:
        """One fault, or two different ones that overlap."""
        return self.rng.sample(FAULTS, 1 if self.rng.random() < 0.7 else 2)

    def run_trial(self, report: ChaosReport, faults: list[str],
                  log: Callable[[str], None]) -> None:
        began = time.monotonic()
        s = self.system
        busy: set[int] = set()
        heals = []
        for name in faults:
            time.sleep(self.rng.uniform(0.0, 0.3))
            killed_before = len(s.killed)
            heals.append(s.inject(name, busy_agents=busy))
            for i in s.killed[killed_before:]:
                self.ledger.killed(s.device(i))
            report.faults[name] += 1
        time.sleep(self.rng.uniform(0.2, 1.0))
        for heal in reversed(heals):
            heal()
        check = self.ledger.check()
        # reconcile scans every reading of the fleet (its duplicate check): on a long run, every
        # n-th trial keeps trials cheap; the ledger above checks every trial incrementally
        fleet_ok = self._reconcile() if report.trials % self.reconcile_every == 0 else None
        self._book(report, check, fleet_ok, faults, log, began)
        report.trial_s_max = max(report.trial_s_max, time.monotonic() - began)

    def _reconcile(self) -> bool:
        pool = open_pool(self.db, min_size=1, max_size=1)
        try:
            return reconcile(pool, self.system.devices).ok
        finally:
            pool.close()

    def _book(self, report: ChaosReport, check: Check, fleet_ok: bool | None, faults: list[str],
              log: Callable[[str], None], began: float) -> None:
        report.trials += 1
        report.readings = check.readings
        report.lost += check.lost
        report.duplicated += check.duplicated
        report.usage_mismatches += check.usage_mismatches
        report.usage_units_checked = check.usage_checked_to
        report.reconcile_failures += 1 if fleet_ok is False else 0
        report.reconcile_runs += 0 if fleet_ok is None else 1
        ok = fleet_ok is not False and not (check.lost or check.duplicated
                                            or check.usage_mismatches)
        verdict = {True: "ok", False: "FAIL", None: "-"}[fleet_ok]
        line = (f"trial {report.trials}: {'+'.join(faults)} readings={check.readings}"
                f" took={time.monotonic() - began:.1f}s"
                f" lost={check.lost} duplicated={check.duplicated}"
                f" usage={'ok' if not check.usage_mismatches else 'FAIL'}"
                f" reconcile={verdict} {'ok' if ok else 'FAIL'}")
        if not ok:
            report.failed_trials.append(f"{line} {'; '.join(check.notes)}")
        log(line)

    def finish(self, report: ChaosReport, log: Callable[[str], None]) -> None:
        """Stop the agents cleanly and check the books a last time."""
        began = time.monotonic()
        exits = self.system.stop_agents()
        report.disk_full_seen = sum(
            (self.system.agent_dir(i) / "agent.log").read_text().count("buffer disk full")
            for i in range(len(self.system.devices)))
        report.agent_failures += sum(1 for c in exits if c != 0)
        check = self.ledger.check()
        fleet_ok = self._reconcile()
        trials = report.trials
        self._book(report, check, fleet_ok, [f"final (agent exits {exits})"], log, began)
        report.trials = trials
        bill = bill_and_compare(self.db, self.ledger.series_ids(), datetime.now(UTC))
        report.billed_kwh = str(bill.billed_units)
        report.billing_mismatches = bill.mismatches
        report.double_billed = bill.double_billed
        report.failed_trials.extend(bill.notes)
        fleet_ok = self._reconcile()  # now with invoices: nothing billed twice
        report.reconcile_failures += 0 if fleet_ok else 1
        report.reconcile_runs += 1
        log(f"billing: {bill.meters} meters, {bill.billed_units} kWh invoiced,"
            f" mismatches={bill.mismatches} double_billed={bill.double_billed}"
            f" reconcile={'ok' if fleet_ok else 'FAIL'}")


def run_chaos(*, trials: int, seed: int, work: Path, log: Callable[[str], None] = print,
              budget_s: float | None = None, every_kind_first: bool = False,
              interval_s: float = 0.02, reconcile_every: int = 1) -> ChaosReport:
    """``trials`` trials (fewer when ``budget_s`` runs out) on private servers under ``work``.

    ``every_kind_first``: the first ``len(FAULTS)`` trials inject each kind once."""
    began = time.monotonic()
    rng = random.Random(seed)
    report = ChaosReport(seed=seed)
    # its own temporary directory: PostgreSQL runs as another user when we are root, and a
    # concurrent pytest session makes /tmp/pytest-of-<user> private again (0700) at its start
    pg_dir = Path(tempfile.mkdtemp(prefix="tally-chaos-pg-"))
    postgres = PrivatePostgres(pg_dir / "data")
    try:
        migrate(postgres.url, use_timescale=False)
        system = System(work, postgres.url, postgres, rng, agents=AGENTS, meters=METERS,
                        interval_s=interval_s)
        try:
            ledger = Ledger(postgres.url, {d: system.agent_dir(i)
                                           for i, d in enumerate(system.devices)}, METERS)
            chaos = Chaos(system, ledger, postgres.url, rng, reconcile_every)
            chaos.warm_up()
            plan = rng.sample(FAULTS, len(FAULTS)) if every_kind_first else []
            for n in range(trials):
                if budget_s is not None and time.monotonic() - began > budget_s:
                    break
                chaos.run_trial(report, [plan[n]] if n < len(plan) else chaos.draw(), log)
            chaos.finish(report, log)
        finally:
            system.close()
    finally:
        postgres.close()
        shutil.rmtree(pg_dir, ignore_errors=True)
        report.wall_s = time.monotonic() - began
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget-s", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--interval-s", type=float, default=0.02,
                    help="each meter's poll interval (load = 6 / interval readings/s)")
    ap.add_argument("--reconcile-every", type=int, default=1, metavar="N",
                    help="run reconcile after every N-th trial (it scans all readings); the"
                         " readings and usage are checked after every trial whatever N is")
    ap.add_argument("--report", type=Path, help="write the report as JSON here")
    args = ap.parse_args()
    if args.reconcile_every < 1:
        ap.error("--reconcile-every must be >= 1")
    with tempfile.TemporaryDirectory(prefix="tally-chaos-") as tmp:
        report = run_chaos(trials=args.trials, seed=args.seed, work=Path(tmp),
                           budget_s=args.budget_s, every_kind_first=True,
                           interval_s=args.interval_s, reconcile_every=args.reconcile_every,
                           log=lambda s: print(s, flush=True))
    doc = report.as_dict()
    print(json.dumps(doc))
    # no naive baseline runs beside it: the figure is a count of trials with nothing wrong
    print(f"RESULT name=chaos figure={report.trials} trials faults={sum(report.faults.values())}"
          f" readings={report.readings} lost={report.lost} duplicated={report.duplicated}"
          f" usage_mismatches={report.usage_mismatches}"
          f" billing_mismatches={report.billing_mismatches} double_billed={report.double_billed}"
          f" reconcile_failures={report.reconcile_failures} ok={report.ok}")
    if args.report is not None:
        args.report.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
