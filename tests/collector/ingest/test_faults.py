"""Fault injection with real servers: the exact set of readings is stored once, whatever fails.

(a) the collector process is SIGKILLed mid-stream and restarted; (b) the database is cut off
for a while; (c) the broker is stopped and restarted mid-stream.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.protocol import Batch
from collector.embedded.broker import MqttBroker
from collector.storage.migrate import migrate
from tests.collector.ingest.conftest import make_config
from tests.collector.ingest.synthetic import (
    BackgroundPublisher,
    Publisher,
    assert_totals_equal,
    count,
    duplicate_rows,
    expected_totals,
    make_batch,
    stored_totals,
    wait_until,
)
from tests.support.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[3]
BATCHES = "SELECT count(*) FROM batches"


def _assert_exact(pg_url: str, batches: list[Batch]) -> None:
    assert_totals_equal(stored_totals(pg_url), expected_totals(batches))
    assert duplicate_rows(pg_url) == 0
    assert count(pg_url, BATCHES) == len({(b.device, b.seq) for b in batches})


def _missing(pg_url: str, n: int) -> list[int]:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(pg_url) as conn:
        have = {int(r[0]) for r in conn.execute("SELECT seq FROM batches")}
    return sorted(set(range(n)) - have)


@pytest.fixture
def publisher(private_broker: MqttBroker, client_id: str) -> Iterator[Publisher]:
    pub = Publisher(private_broker.url, f"pub-{client_id}")
    yield pub
    pub.close()


def _spawn(pg_url: str, mqtt_url: str, client_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TALLY_DATABASE_URL": pg_url, "TALLY_MQTT_URL": mqtt_url,
           "TALLY_MQTT_CLIENT_ID": client_id, "TALLY_INGEST_MAX_MESSAGES": "20",
           "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--no-api"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(
    pg_url: str, private_broker: MqttBroker, publisher: Publisher, client_id: str,
    tmp_path: Path,
) -> None:
    """A collector killed with SIGKILL while ingesting loses nothing once restarted."""
    migrate(pg_url, use_timescale=False)
    log = tmp_path / "collector.log"
    proc = _spawn(pg_url, private_broker.url, client_id, log)
    try:
        warmup = make_batch("dev-k", 0, 50)
        for _ in range(30):  # re-sent (same seq) until the new collector has subscribed
            publisher.publish_batch(warmup)
            if wait_until(lambda: count(pg_url, BATCHES) == 1, 1):
                break
        assert count(pg_url, BATCHES) == 1, log.read_text()
        bg = BackgroundPublisher(publisher, "dev-k", range(1, 400))
        assert wait_until(lambda: count(pg_url, BATCHES) >= 100, 60), log.read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = count(pg_url, BATCHES)
        time.sleep(1.0)
        proc = _spawn(pg_url, private_broker.url, client_id, log)
        bg.join()
        assert killed_at < 400
        assert wait_until(lambda: count(pg_url, BATCHES) == 400, 60), log.read_text()
        time.sleep(0.5)  # anything redelivered late would show up as a duplicate here
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    _assert_exact(pg_url, [warmup, *bg.batches])


def test_database_outage_stops_acks_then_catches_up(
    pg_url: str, pg_proxied: tuple[str, TcpProxy], private_broker: MqttBroker,
    publisher: Publisher, client_id: str, run_collector: Callable[..., Any],
) -> None:
    """While the database is cut off nothing is acknowledged; afterwards everything arrives once."""
    migrate(pg_url, use_timescale=False)
    url, proxy = pg_proxied
    with run_collector(make_config(url, private_broker.url, client_id)) as collector:
        bg = BackgroundPublisher(publisher, "dev-d", range(300), pause_s=0.01)
        assert wait_until(lambda: count(pg_url, BATCHES) >= 50, 60)
        proxy.cut()
        assert wait_until(lambda: not collector.probe().storage_ok, 30)
        stored_during_outage = count(pg_url, BATCHES)
        time.sleep(2.0)
        assert count(pg_url, BATCHES) == stored_during_outage
        assert collector.probe().pending > 0
        proxy.restore()
        bg.join()
        assert wait_until(lambda: count(pg_url, BATCHES) == 300, 90)
        assert wait_until(lambda: collector.probe().storage_ok, 10)
    _assert_exact(pg_url, bg.batches)


def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    pg_url: str, private_broker: MqttBroker, publisher: Publisher, client_id: str,
    run_collector: Callable[..., Any],
) -> None:
    """Stopping and restarting the broker mid-stream loses no acknowledged batch.

    The collector reconnects slowly (>= 2 s) so batches are published to the restarted broker
    before it is back: they must wait in its persistent session.
    """
    migrate(pg_url, use_timescale=False)
    config = make_config(pg_url, private_broker.url, client_id,
                         TALLY_MQTT_RECONNECT_MIN_S="4", TALLY_MQTT_RECONNECT_MAX_S="4")
    with run_collector(config) as collector:
        bg = BackgroundPublisher(publisher, "dev-m", range(300), pause_s=0.005)
        assert wait_until(lambda: count(pg_url, BATCHES) >= 80, 60)
        private_broker.stop()
        assert wait_until(lambda: not collector.consumer.connected, 10)
        time.sleep(1.0)
        private_broker.start()
        bg.join()
        ok = wait_until(lambda: count(pg_url, BATCHES) == 300, 90)
        assert ok, (_missing(pg_url, 300), collector.probe(), collector.writer.stats())
        assert collector.consumer.connected
    _assert_exact(pg_url, bg.batches)
