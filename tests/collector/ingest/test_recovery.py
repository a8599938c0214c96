"""Recovery speed: after a PostgreSQL outage the collector resumes within 2 s of the database
answering again (with the default retry settings, through a proxy the test cuts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from collector.config import load_config
from collector.embedded.broker import MqttBroker
from collector.storage.migrate import migrate
from tests.collector.ingest.synthetic import Publisher, count, make_batch, wait_until
from tests.support.proxy import TcpProxy

BATCHES = "SELECT count(*) FROM batches"


def test_collector_resumes_within_two_seconds_of_the_database_returning(
    pg_url: str, pg_proxied: tuple[str, TcpProxy], private_broker: MqttBroker,
    client_id: str, run_collector: Callable[..., Any],
) -> None:
    """An 8 s outage (long enough for unbounded doubling backoffs to reach 8 s) is followed by
    the first commit less than 2 s after the proxy lets connections through again."""
    migrate(pg_url, use_timescale=False)
    url, proxy = pg_proxied
    config = load_config(None, {"TALLY_DATABASE_URL": url, "TALLY_MQTT_URL": private_broker.url,
                                "TALLY_MQTT_CLIENT_ID": client_id,
                                "TALLY_DEVICES_ACCEPT_UNREGISTERED": "true"})
    pub = Publisher(private_broker.url, f"pub-{client_id}")
    try:
        with run_collector(config):
            pub.publish_batch(make_batch("dev-rec", 0))
            assert wait_until(lambda: count(pg_url, BATCHES) == 1, 30)
            proxy.cut()
            pub.publish_batch(make_batch("dev-rec", 1))
            time.sleep(8.0)
            assert count(pg_url, BATCHES) == 1
            proxy.restore()
            back = time.monotonic()
            assert wait_until(lambda: count(pg_url, BATCHES) == 2, 30, interval_s=0.05)
            resumed_s = time.monotonic() - back
    finally:
        pub.close()
    assert resumed_s < 2.0, f"resumed {resumed_s:.2f}s after the database came back"
