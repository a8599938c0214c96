"""A PUBACK queued before a reconnect never acknowledges another message after it.

With a broker that keeps no state (Mosquitto, persistence off, killed -9), message ids start
again at 1 on the new connection: the id of a message received before the crash now names a
different message. The consumer binds every PUBACK to the connection its message arrived on.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from agent.clock import SystemClock
from collector.ingest.messages import InboundMessage
from collector.ingest.mqtt_consumer import MqttConsumer, MqttSettings
from tests.collector.ingest.synthetic import Publisher, wait_until
from tests.faults.test_end_to_end_faults import Mosquitto


class Inbox:
    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.lock = threading.Lock()

    def __call__(self, msg: InboundMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [m.payload for m in self.messages]


def test_stale_puback_is_dropped_after_a_broker_crash(tmp_path: Path) -> None:
    """Message A (received before the crash) and message B (after) share a message id; acking
    A after the reconnect sends nothing, so B is still unacknowledged and is redelivered."""
    broker = Mosquitto(tmp_path / "broker", persistence=False)
    broker.start()
    client_id = f"gen-{uuid.uuid4().hex[:8]}"
    settings = MqttSettings(port=broker.port, client_id=client_id, topics=("gen/#",),
                            reconnect_min_s=0.1, reconnect_max_s=0.5)
    inbox = Inbox()
    consumer = MqttConsumer(settings, inbox, SystemClock())
    pub = Publisher(broker.url, f"pub-{client_id}")
    try:
        consumer.start()
        assert consumer.wait_connected(10)
        pub.publish("gen/a", b"A")
        assert wait_until(lambda: inbox.payloads() == [b"A"], 10)
        broker.kill9()
        broker.start()
        assert wait_until(lambda: consumer.connected and consumer.generation == 2, 20)
        assert wait_until(pub.client.is_connected, 20)  # else paho queues one copy per retry
        pub.publish("gen/b", b"B", timeout_s=20)
        assert wait_until(lambda: inbox.payloads() == [b"A", b"B"], 10), inbox.payloads()
        a, b = inbox.messages
        assert (a.generation, b.generation) == (1, 2)
        assert a.mid == b.mid  # the id was reused: acking A by id alone would ack B
        consumer.ack([a])
        time.sleep(0.5)  # the network thread handles the queued PUBACK
        stale = consumer.stale_acks
        consumer.stop()
        again = Inbox()
        consumer = MqttConsumer(settings, again, SystemClock())
        consumer.start()
        assert wait_until(lambda: again.payloads() == [b"B"], 10)  # B was never acknowledged
        consumer.ack(again.messages)
        assert stale == 1
    finally:
        consumer.stop()
        pub.close()
        broker.stop()
