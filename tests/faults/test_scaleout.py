"""Three collector processes on one shared subscription under load; one is killed -9 and not
restarted: the other two take over its share, and every value in every meter's log is stored
exactly once (and reconcile agrees)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from collector.reconcile.gather import reconcile
from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from tests.faults.test_end_to_end_faults import AGENTS, Mosquitto, Trial, wait_until

pytestmark = pytest.mark.timeout(180)


def test_three_collectors_one_killed_exactly_once(pg_url: str, tmp_path: Path) -> None:
    migrate(pg_url, use_timescale=False)
    broker = Mosquitto(tmp_path / "broker", persistence=True)
    broker.start()
    trial = Trial(tmp_path, pg_url, broker)
    try:
        for name in ("a", "b", "c"):
            trial.start_collector(name)
        for i in range(AGENTS):
            trial.start_agent(i)
        assert wait_until(lambda: len({d for d, _, _ in trial.stored()}) == AGENTS, 60)
        time.sleep(2.0)
        trial.collectors["b"].send_signal(signal.SIGKILL)
        trial.collectors["b"].wait(10)
        before = sum(trial.stored().values())
        time.sleep(4.0)
        assert sum(trial.stored().values()) > before  # the survivors carry the load
        trial.stop_agents()
        produced = {(trial.device(i), meter, v) for i in range(AGENTS)
                    for meter, values in trial.logged(i).items() for v in values}
        assert len(produced) > AGENTS * 2 * 100  # real load (fewer on a busy machine)
        wait_until(lambda: produced <= set(trial.stored()), 60)
        stored = trial.stored()
        assert sorted(produced - set(stored))[:5] == []
        assert sorted(k for k, n in stored.items() if n > 1)[:5] == []
        pool = open_pool(pg_url, min_size=1, max_size=1)
        try:
            fleet = reconcile(pool, [trial.device(i) for i in range(AGENTS)])
        finally:
            pool.close()
        assert fleet.total("lost") == 0
        assert fleet.total("duplicated") == 0
    finally:
        trial.close()
        broker.stop()
