"""The consumer with a real broker and database: bad messages become dead letters, good ones
are stored, and consumption goes on."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from agent.protocol import readings_topic, status_topic
from collector.embedded.broker import MqttBroker
from collector.storage.migrate import migrate
from tests.collector.ingest.bad_inputs import bad_inputs
from tests.collector.ingest.conftest import make_config
from tests.collector.ingest.synthetic import (
    Publisher,
    assert_totals_equal,
    count,
    drop_session,
    expected_totals,
    make_batch,
    stored_totals,
    wait_until,
)


def test_bad_messages_are_dead_lettered_and_good_ones_still_stored(
    pg_url: str, private_broker: MqttBroker, client_id: str, run_collector: Callable[..., Any]
) -> None:
    """Every malformed message ends in dead_letters with its reason; good batches after them
    are stored."""
    migrate(pg_url, use_timescale=False)
    device = "dev-bad"
    bad = bad_inputs(device, int(time.time() * 1000))
    pub = Publisher(private_broker.url, f"pub-{client_id}")
    good = [make_batch(device, s) for s in range(3)]
    with run_collector(make_config(pg_url, private_broker.url, client_id)):
        pub.publish_batch(good[0])
        for b in bad:
            pub.publish(b.topic, b.payload)
        for g in good[1:]:
            pub.publish_batch(g)
        assert wait_until(lambda: count(pg_url, "SELECT count(*) FROM batches") == 3, 30)
        assert wait_until(lambda: count(pg_url, "SELECT count(*) FROM dead_letters") == len(bad))
    pub.close()
    import psycopg  # noqa: PLC0415

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT payload_sha256, reason, field FROM dead_letters").fetchall()
    # Keyed by the SHA-256 of the whole payload (a dead letter keeps at most 64 KiB of it).
    by_payload = {bytes(h): (r, f) for h, r, f in rows}
    for b in bad:
        reason, field = by_payload[hashlib.sha256(b.payload).digest()]
        assert reason, b.name
        assert field == b.field, b.name
    assert_totals_equal(stored_totals(pg_url), expected_totals(good))


def test_status_messages_are_stored(
    pg_url: str, mqtt_url: str, client_id: str, run_collector: Callable[..., Any]
) -> None:
    """A retained status message updates device_status with state and buffer depth."""
    migrate(pg_url, use_timescale=False)
    device = f"st-{uuid.uuid4().hex[:8]}"
    env = {"TALLY_MQTT_READINGS_TOPIC": readings_topic(device),
           "TALLY_MQTT_STATUS_TOPIC": status_topic(device)}
    pub = Publisher(mqtt_url, f"pub-{client_id}")
    with run_collector(make_config(pg_url, mqtt_url, client_id, **env)):
        pub.publish(status_topic(device), b'{"state":"online","buffer_depth":42}')
        assert wait_until(
            lambda: count(pg_url, "SELECT coalesce(max(buffer_depth), 0) FROM device_status")
            == 42
        )
    pub.close()


def test_messages_published_while_collector_is_down_arrive_after_restart(
    pg_url: str, mqtt_url: str, client_id: str, run_collector: Callable[..., Any]
) -> None:
    """The persistent session keeps QoS 1 batches for a stopped collector."""
    migrate(pg_url, use_timescale=False)
    device = f"ps-{uuid.uuid4().hex[:8]}"
    config = make_config(pg_url, mqtt_url, client_id,
                         TALLY_MQTT_READINGS_TOPIC=readings_topic(device))
    batches = [make_batch(device, s) for s in range(20)]
    pub = Publisher(mqtt_url, f"pub-{client_id}")
    with run_collector(config):
        for b in batches[:10]:
            pub.publish_batch(b)
        assert wait_until(lambda: count(pg_url, "SELECT count(*) FROM batches") == 10)
    for b in batches[10:]:
        pub.publish_batch(b)
    with run_collector(config):
        assert wait_until(lambda: count(pg_url, "SELECT count(*) FROM batches") == 20)
    pub.close()
    drop_session(mqtt_url, client_id)
    assert_totals_equal(stored_totals(pg_url), expected_totals(batches))


def test_shared_subscription_splits_work_without_loss_or_duplicates(
    pg_url: str, private_broker: MqttBroker, client_id: str, run_collector: Callable[..., Any]
) -> None:
    """Two collectors in one shared-subscription group store every batch exactly once."""
    migrate(pg_url, use_timescale=False)
    shared = {"TALLY_MQTT_SHARED_GROUP": "ingest"}
    first = make_config(pg_url, private_broker.url, f"{client_id}-a", **shared)
    second = make_config(pg_url, private_broker.url, f"{client_id}-b", **shared)
    batches = [make_batch(f"dev-{i % 4}", i) for i in range(120)]
    pub = Publisher(private_broker.url, f"pub-{client_id}")
    with run_collector(first) as a, run_collector(second) as b:
        for batch in batches:
            pub.publish_batch(batch)
        assert wait_until(lambda: count(pg_url, "SELECT count(*) FROM batches") == 120)
        shares = (a.writer.stats().batches, b.writer.stats().batches)
    pub.close()
    assert min(shares) > 0
    assert sum(shares) == 120
    assert_totals_equal(stored_totals(pg_url), expected_totals(batches))
