"""The test infrastructure itself talks to real servers."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import psycopg

from collector.embedded.broker import MqttBroker
from tests.support.proxy import TcpProxy


def test_pg_url_is_a_fresh_empty_database(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert row == (0,)


def test_proxy_cut_makes_database_unreachable(pg_proxied: tuple[str, TcpProxy]) -> None:
    url, proxy = pg_proxied
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
    proxy.cut()
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        pass
    else:
        raise AssertionError("connection through a cut proxy succeeded")
    proxy.restore()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_private_broker_round_trip_survives_restart(private_broker: MqttBroker) -> None:
    got: list[bytes] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="infra-sub", clean_session=False)
    sub.on_message = lambda _c, _u, msg: got.append(msg.payload)
    sub.connect("127.0.0.1", private_broker.port)
    sub.subscribe("infra/t", qos=1)
    sub.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="infra-pub")
    pub.connect("127.0.0.1", private_broker.port)
    pub.loop_start()
    pub.publish("infra/t", b"one", qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert got == [b"one"]
    pub.loop_stop()
    sub.loop_stop()
    pub.disconnect()
    sub.disconnect()
