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
