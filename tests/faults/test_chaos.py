"""Short chaos mode: random faults (kill -9 of broker, collectors, agents; PostgreSQL cuts)
during sustained load for about a minute; every trial: 0 lost, 0 duplicated, reconcile clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.storage.migrate import migrate
from tests.faults.chaos import run_chaos

pytestmark = pytest.mark.timeout(240)


def test_random_faults_lose_and_duplicate_nothing(pg_url: str, tmp_path: Path) -> None:
    migrate(pg_url, use_timescale=False)
    lines: list[str] = []
    report = run_chaos(trials=6, seed=13, db_direct=pg_url, work=tmp_path, log=lines.append,
                       budget_s=70.0)
    assert report.trials >= 3, lines
    assert sum(report.faults.values()) >= report.trials
    assert report.readings > 3 * 2 * 100
    assert report.lost == 0, lines
    assert report.duplicated == 0, lines
    assert report.reconcile_failures == 0, lines
    assert report.agent_failures == 0, lines
