"""Short chaos mode: every fault kind once (kill -9 of broker, collector, agent and PostgreSQL;
cuts and slow links to PostgreSQL and to the broker; an agent's disk full; an agent's clock
jumping) under sustained load, on private servers; after every trial: 0 lost, 0 duplicated,
usage derived as the registers say, reconcile clean; at the end every meter billed exactly its
register, nothing billed twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.chaos import run_chaos
from tests.faults.chaos_system import FAULTS

pytestmark = pytest.mark.timeout(240)


def test_every_fault_kind_loses_and_double_counts_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    report = run_chaos(trials=len(FAULTS), seed=13, work=tmp_path, log=lines.append,
                       every_kind_first=True, interval_s=0.01)
    assert report.trials == len(FAULTS), lines
    assert all(n == 1 for n in report.faults.values()), report.faults
    assert report.readings > 6 * 1000, lines  # real load: thousands of readings per meter
    assert report.lost == 0, report.failed_trials
    assert report.duplicated == 0, report.failed_trials
    assert report.usage_mismatches == 0, report.failed_trials
    assert report.usage_units_checked > 0, lines  # usage was compared, not skipped
    assert report.reconcile_failures == 0, report.failed_trials
    assert report.agent_failures == 0, lines
    assert report.disk_full_seen >= 1, lines  # the full disk really refused a write
    assert report.billing_mismatches == 0, report.failed_trials
    assert report.double_billed == 0, report.failed_trials
    assert float(report.billed_kwh) > 6 * 1000, lines  # every meter billed its register
