"""Running an in-process collector (consumer + writer) against real servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from collector.config import CollectorConfig, load_config
from collector.runner import Collector
from collector.storage.database import open_pool
from tests.collector.ingest.synthetic import drop_session


def make_config(db_url: str, mqtt_url: str, client_id: str, **env: str) -> CollectorConfig:
    return load_config(None, {
        "TALLY_DATABASE_URL": db_url, "TALLY_MQTT_URL": mqtt_url,
        "TALLY_MQTT_CLIENT_ID": client_id, "TALLY_INGEST_RETRY_MAX_S": "1.0",
        "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true", **env,
    })


@pytest.fixture
def client_id() -> str:
    return f"tally-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def run_collector() -> Iterator[Callable[[CollectorConfig], object]]:
    """Context manager factory: a started Collector, stopped (and its session dropped) after."""
    sessions: list[tuple[str, str]] = []

    @contextmanager
    def run(config: CollectorConfig) -> Iterator[Collector]:
        pool = open_pool(config.database.url, min_size=1, max_size=2, timeout_s=2.0,
                         connect_timeout_s=2)
        collector = Collector(config, pool)
        collector.start()
        sessions.append((config.mqtt.url, config.mqtt.client_id))
        try:
            assert collector.consumer.wait_connected(15)
            yield collector
        finally:
            collector.stop()
            pool.close()

    yield run
    for url, cid in sessions:
        drop_session(url, cid)
