"""The running collector turns stored counter readings into interval usage by itself."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.protocol import Batch, Kind, Series, readings_topic, status_topic
from collector.storage.migrate import migrate
from tests.collector.ingest.conftest import make_config
from tests.collector.ingest.synthetic import Publisher, wait_until


def _usage_total(pg_url: str) -> float:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT coalesce(sum(quantity), 0) FROM usage_15m").fetchone()
    return float(row[0]) if row else 0.0


def test_collector_derives_usage_from_ingested_counters(
    pg_url: str, mqtt_url: str, client_id: str, run_collector: Callable[..., Any]
) -> None:
    """A cumulative register 100.0 → 112.5 over two hours becomes 12.5 kWh of interval usage."""
    migrate(pg_url, use_timescale=False)
    device = f"use-{uuid.uuid4().hex[:8]}"
    t0 = (int(time.time()) // 900 * 900 - 2 * 3600) * 1000
    ts = t0 + np.arange(9, dtype=np.int64) * 900_000
    values = np.linspace(100.0, 112.5, 9)
    batch = Batch(device, 1, int(time.time() * 1000), "test",
                  (Series("main", "energy", "kWh", Kind.CUMULATIVE, ts, values),))
    env = {"TALLY_MQTT_READINGS_TOPIC": readings_topic(device),
           "TALLY_MQTT_STATUS_TOPIC": status_topic(device),
           "TALLY_INGEST_USAGE_REFRESH_S": "0.2"}
    pub = Publisher(mqtt_url, f"pub-{client_id}")
    with run_collector(make_config(pg_url, mqtt_url, client_id, **env)):
        pub.publish_batch(batch)
        assert wait_until(lambda: abs(_usage_total(pg_url) - 12.5) < 1e-9, 30)
    pub.close()


def _batch(device: str, seq: int) -> Batch:
    t0 = (int(time.time()) // 900 * 900 - 3600) * 1000
    ts = t0 + np.arange(5, dtype=np.int64) * 900_000
    return Batch(device, seq, int(time.time() * 1000), "test",
                 (Series("main", "energy", "kWh", Kind.CUMULATIVE, ts, np.linspace(5, 7, 5)),))


def test_usage_follows_the_commit_not_the_polling_interval(
    pg_url: str, mqtt_url: str, client_id: str, run_collector: Callable[..., Any]
) -> None:
    """With a refresh interval of a minute, usage still appears seconds after the readings
    are stored: the writer wakes the refresh after its commit."""
    migrate(pg_url, use_timescale=False)
    device = f"wake-{uuid.uuid4().hex[:8]}"
    env = {"TALLY_MQTT_READINGS_TOPIC": readings_topic(device),
           "TALLY_MQTT_STATUS_TOPIC": status_topic(device),
           "TALLY_INGEST_USAGE_REFRESH_S": "60"}
    pub = Publisher(mqtt_url, f"pub-{client_id}")
    with run_collector(make_config(pg_url, mqtt_url, client_id, **env)) as collector:
        assert collector.refresher is not None
        wait_until(lambda: collector.refresher.stats().passes >= 1, 10)  # start-up pass
        pub.publish_batch(_batch(device, 1))
        assert wait_until(lambda: abs(_usage_total(pg_url) - 2.0) < 1e-9, 15)
        assert collector.probe().usage_refresh is not None
    pub.close()


def test_readings_stored_by_an_instance_that_stopped_before_refreshing_converge(
    pg_url: str, mqtt_url: str, client_id: str, run_collector: Callable[..., Any]
) -> None:
    """An ingest-only instance (refresh off) stores readings and goes away, as a collector
    that dies between its commit and its refresh would: the next instance with the refresh
    derives them, once, in its first pass."""
    migrate(pg_url, use_timescale=False)
    device = f"left-{uuid.uuid4().hex[:8]}"
    env = {"TALLY_MQTT_READINGS_TOPIC": readings_topic(device),
           "TALLY_MQTT_STATUS_TOPIC": status_topic(device)}
    pub = Publisher(mqtt_url, f"pub-{client_id}")
    with run_collector(make_config(pg_url, mqtt_url, client_id,
                                   TALLY_INGEST_USAGE_REFRESH_S="0", **env)) as collector:
        assert collector.refresher is None
        pub.publish_batch(_batch(device, 1))
        assert wait_until(lambda: collector.probe().readings == 5, 15)
    assert _usage_total(pg_url) == 0.0
    with run_collector(make_config(pg_url, mqtt_url, f"{client_id}-2",
                                   TALLY_INGEST_USAGE_REFRESH_S="60", **env)):
        assert wait_until(lambda: abs(_usage_total(pg_url) - 2.0) < 1e-9, 15)
    pub.close()
