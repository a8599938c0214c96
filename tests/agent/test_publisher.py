"""The paho adapter against a real broker: PUBACK futures, last will, errors translated."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from agent.config import BrokerConfig
from agent.errors import ConfigError, PublishError
from agent.publisher import MqttPublisher
from collector.embedded.broker import MqttBroker, free_port
from tests.agent.mqtt_helpers import Collector


def uid() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def test_publish_completes_on_puback(mqtt_url: str) -> None:
    """Each publish future completes once the broker acknowledges; a subscriber gets the bytes."""
    topic = f"test/{uid()}/readings"
    sub = Collector(mqtt_url, topic)
    pub = MqttPublisher(client_id=uid(), broker=BrokerConfig(url=mqtt_url))
    await pub.connect()
    futures = [pub.publish(topic, f"m{i}".encode()) for i in range(50)]
    await asyncio.wait_for(asyncio.gather(*futures), 10)
    got = sub.wait_for(lambda m: len(m) >= 50)
    assert [p for _, p, _ in got] == [f"m{i}".encode() for i in range(50)]
    await pub.close()
    sub.close()


async def test_connect_refused_is_publish_error() -> None:
    """Connecting to a closed port raises PublishError, not OSError."""
    pub = MqttPublisher(client_id=uid(), broker=BrokerConfig(url=f"mqtt://127.0.0.1:{free_port()}"))
    with pytest.raises(PublishError, match="cannot connect"):
        await pub.connect()
    await pub.close()


async def test_bad_topic_is_publish_error(mqtt_url: str) -> None:
    """A topic paho rejects raises PublishError at the adapter."""
    pub = MqttPublisher(client_id=uid(), broker=BrokerConfig(url=mqtt_url))
    await pub.connect()
    with pytest.raises(PublishError):
        pub.publish("bad/+/topic", b"x")
    await pub.close()


async def test_last_will_is_published_when_connection_dies(private_broker: MqttBroker) -> None:
    """If the broker loses the agent without DISCONNECT, the retained offline will is sent."""
    url = private_broker.url
    topic = f"tally/v1/{uid()}/status"
    will = json.dumps({"state": "offline"}).encode()
    sub = Collector(url, topic)
    pub = MqttPublisher(client_id=uid(), broker=BrokerConfig(url=url, keepalive_s=5),
                        will_topic=topic, will_payload=will)
    await pub.connect()
    sock = pub._client.socket()
    assert sock is not None
    sock.close()  # die without DISCONNECT: the broker must publish the will
    got = sub.wait_for(lambda m: any(p == will for _, p, _ in m), timeout=15)
    assert any(p == will for _, p, _ in got)
    sub.close()
    await pub.close()


async def test_messages_published_during_outage_arrive_after_reconnect(
    private_broker: MqttBroker,
) -> None:
    """A message handed over while the broker is down is sent once the publisher reconnects."""
    broker = private_broker
    url = broker.url
    topic = f"test/{uid()}/r"
    sub_id = uid()
    Collector(url, topic, client_id=sub_id).close()  # persistent subscription
    pub = MqttPublisher(client_id=uid(), broker=BrokerConfig(url=url))
    await pub.connect()
    broker.stop()
    await asyncio.wait_for(pub.wait_disconnected(), 10)
    fut = pub.publish(topic, b"late")
    broker.start()
    await pub.connect()
    await asyncio.wait_for(fut, 10)
    sub = Collector(url, topic, client_id=sub_id)
    assert sub.wait_for(lambda m: len(m) >= 1)[0][1] == b"late"
    sub.close()
    await pub.close()


def test_unreadable_ca_file_is_config_error(tmp_path: Path) -> None:
    """A TLS CA file that cannot be loaded is reported as a configuration error."""
    broker = BrokerConfig(url="mqtts://127.0.0.1:8883", ca_file=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="ca_file"):
        MqttPublisher(client_id=uid(), broker=broker)
