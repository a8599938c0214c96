"""The test infrastructure itself talks to real servers."""

from __future__ import annotations

import socket
import threading
import time

import paho.mqtt.client as mqtt
import psycopg
import pytest

from collector.embedded.broker import MqttBroker
from tests.support.proxy import LinkShape, TcpProxy


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


def _transfer_server() -> socket.socket:
    """A TCP server on a free port: a client sends ``up down\n`` and ``up`` bytes, then the
    server sends ``down`` bytes (threads, daemon)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_transfer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _transfer(conn: socket.socket) -> None:
    with conn:
        data = b""
        while b"\n" not in data:
            data += conn.recv(65536)
        head, rest = data.split(b"\n", 1)
        up, down = (int(x) for x in head.split())
        got = len(rest)
        while got < up:
            got += len(conn.recv(65536))
        conn.sendall(b"y" * down)


def _timed(port: int, up: int, down: int) -> float:
    """Seconds to send ``up`` bytes and receive ``down`` (at least 1) through the proxy."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"{up} {down}\n".encode())
        time.sleep(0.3)  # the header is through: time the transfer alone
        began = time.monotonic()
        s.sendall(b"x" * up)
        got = 0
        while got < down:
            got += len(s.recv(65536))
        return time.monotonic() - began


def test_proxy_slow_link_adds_latency_and_limits_bandwidth_both_ways() -> None:
    """``slow`` delays every chunk and caps the bytes per second in each direction; ``fast``
    makes the link normal again."""
    server = _transfer_server()
    proxy = TcpProxy("127.0.0.1", server.getsockname()[1])
    try:
        assert _timed(proxy.port, 10, 1) < 0.1
        proxy.slow(LinkShape(latency_s=0.15, bytes_per_s=1e9))
        assert _timed(proxy.port, 10, 1) >= 0.3  # 0.15 s there, 0.15 s back
        proxy.slow(LinkShape(latency_s=0.0, bytes_per_s=40_000))
        assert _timed(proxy.port, 20_000, 1) >= 0.45  # upload: 0.5 s at 40 kB/s
        assert _timed(proxy.port, 1, 20_000) >= 0.45  # download: the same
        proxy.fast()
        assert _timed(proxy.port, 20_000, 20_000) < 0.2
    finally:
        proxy.close()
        server.close()
    with pytest.raises(ValueError, match="bytes_per_s"):
        LinkShape(latency_s=0.1, bytes_per_s=0)
