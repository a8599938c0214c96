"""The notification loop outlives a database outage: it logs, waits and carries on."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import pytest

from collector.storage.database import open_pool
from collector.storage.migrate import migrate
from collector.webhooks.loop import LoopSettings, NotificationLoop
from tests.support.proxy import TcpProxy


def test_a_database_outage_does_not_end_the_loop(
    pg_proxied: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    """With PostgreSQL cut off, taking a pooled connection times out: the loop logs it and
    retries (it used to end the thread, and webhooks and alerts stopped for good)."""
    url, proxy = pg_proxied
    migrate(url, use_timescale=False)
    pool = open_pool(url, min_size=1, max_size=1, timeout_s=0.3, connect_timeout_s=1)
    pool.wait(10)
    stop = threading.Event()
    loop = NotificationLoop(pool, lambda: datetime.now(UTC), LoopSettings(poll_s=0.05))
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    caplog.set_level(logging.WARNING, logger="collector.webhooks.loop")
    try:
        thread.start()
        time.sleep(0.5)
        proxy.cut()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            "no database connection available" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.1)
        assert any("no database connection available" in r.getMessage()
                   for r in caplog.records), [r.getMessage() for r in caplog.records]
        assert thread.is_alive()
        proxy.restore()
        time.sleep(1.0)
        assert thread.is_alive()
    finally:
        proxy.restore()
        stop.set()
        thread.join(10)
        pool.close()
    assert not thread.is_alive()
