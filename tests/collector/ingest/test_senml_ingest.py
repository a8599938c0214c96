"""SenML packs published straight to MQTT are stored once, and bad packs become dead letters."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from agent.protocol import readings_topic, status_topic
from collector.storage.migrate import migrate
from tests.collector.ingest.conftest import make_config
from tests.collector.ingest.synthetic import Publisher, count, wait_until


def test_senml_pack_is_stored_once_and_bad_pack_is_dead_lettered(
    pg_url: str, mqtt_url: str, client_id: str, run_collector: Callable[..., Any]
) -> None:
    """The same pack delivered twice is stored once; an undecodable pack is kept with a reason."""
    migrate(pg_url, use_timescale=False)
    device = f"senml-{uuid.uuid4().hex[:8]}"
    topic = f"tally/v1/{device}/senml"
    base_t = int(time.time()) - 120
    pack = json.dumps([
        {"bn": "urn:dev:ow:10e2073a01080063:", "bt": base_t, "bu": "kWh", "n": "energy",
         "s": 1200.5},
        {"n": "energy", "t": 60, "s": 1200.75},
        {"n": "power", "u": "W", "t": 60, "v": 812.0},
    ]).encode()
    env = {"TALLY_MQTT_READINGS_TOPIC": readings_topic(device),
           "TALLY_MQTT_STATUS_TOPIC": status_topic(device),
           "TALLY_MQTT_SENML_TOPIC": topic}
    pub = Publisher(mqtt_url, f"pub-{client_id}")
    with run_collector(make_config(pg_url, mqtt_url, client_id, **env)):
        pub.publish(topic, pack)
        pub.publish(topic, pack)
        pub.publish(topic, b'[{"n": "energy", "v": "not a number"}]')
        assert wait_until(lambda: count(pg_url, "SELECT count(*) FROM dead_letters") == 1, 30)
        assert wait_until(lambda: count(pg_url, "SELECT count(*) FROM batches") == 1, 30)
    pub.close()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT s.metric, s.kind, r.value FROM readings r JOIN series s USING (series_id)"
            " WHERE s.device_id = %s ORDER BY s.metric, r.ts", (device,)
        ).fetchall()
        reason = conn.execute("SELECT reason FROM dead_letters").fetchone()
    assert [(m, k, v) for m, k, v in rows] == [
        ("energy", "cumulative", 1200.5), ("energy", "cumulative", 1200.75),
        ("power", "gauge", 812.0),
    ]
    assert reason is not None
    assert reason[0].startswith("SenML:")
