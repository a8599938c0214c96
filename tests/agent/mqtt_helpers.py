"""Test helpers: a plain paho QoS 1 subscriber collecting messages in a background thread."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.protocol_ack import Ack, ack_topic, encode_ack, peek_batch_key


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


class Collector:
    """Subscribes (QoS 1, persistent session); keeps (topic, payload, retain) of every message.

    With ``confirm`` (the default) it also plays the collector's end-to-end acknowledgement:
    each batch it receives counts as committed and is confirmed on ``tally/v1/<device>/ack``.
    """

    def __init__(self, url: str, topic: str, *, client_id: str | None = None,
                 confirm: bool = True) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._confirm = confirm
        self._lock = threading.Lock()
        self._topic = topic
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{uuid.uuid4().hex[:10]}",
            clean_session=False,
        )
        self._subscribed = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        host, port = host_port(url)
        self._client.reconnect_delay_set(1, 1)
        self._client.connect(host, port, 30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("subscriber did not subscribe")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(self._topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
        parts = msg.topic.split("/")
        seq = peek_batch_key(bytes(msg.payload))
        if self._confirm and len(parts) == 4 and parts[3] == "readings" and seq is not None:
            ack = encode_ack(Ack(parts[2], seq, ((seq, seq),)))
            client.publish(ack_topic(parts[2]), ack, qos=1)

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, pred: Callable[[list[tuple[str, bytes, bool]]], bool],
                 timeout: float = 20.0) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.snapshot()
            if pred(snap):
                return snap
            time.sleep(0.05)
        raise TimeoutError(f"condition not met; {len(self.snapshot())} message(s) received")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
