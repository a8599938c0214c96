"""A Source subscribed to a local MQTT broker, buffering decoded device messages for polling.

paho-mqtt runs its network loop in its own thread; messages are decoded there and put in a
thread-safe ``ReadingBuffer``; the agent's poll drains it. A poll fails (``SourceError``)
only when the broker cannot be reached; undecodable messages are counted and skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.errors import SourceError
from agent.protocol import Reading
from firmware_bridge.buffer import ReadingBuffer
from firmware_bridge.errors import BridgeConfigError, DecodeError
from firmware_bridge.measurement import Measurement, to_readings
from firmware_bridge.mqtt_devices.payloads import (
    decode_shelly_gen1,
    decode_shelly_gen2,
    decode_tasmota_sensor,
)

__all__ = ["MqttDeviceSource", "TopicDecoder", "shelly_decoder", "tasmota_decoder"]

# (topic, payload, ts_ms) → measurements; raises DecodeError
TopicDecoder = Callable[[str, bytes, int], list[Measurement]]


def shelly_decoder(device_id: str, generation: int, channel: int) -> tuple[list[str], TopicDecoder]:
    """Topics to subscribe and the decoder for one Shelly relay channel."""
    if generation == 1:
        base = f"shellies/{device_id}/relay/{channel}"

        def gen1(topic: str, payload: bytes, ts_ms: int) -> list[Measurement]:
            return decode_shelly_gen1(topic.rsplit("/", 1)[-1], payload, ts_ms)

        return [f"{base}/energy", f"{base}/power"], gen1

    def gen2(topic: str, payload: bytes, ts_ms: int) -> list[Measurement]:
        return decode_shelly_gen2(payload, ts_ms)

    return [f"{device_id}/status/switch:{channel}"], gen2


def tasmota_decoder(topic: str) -> tuple[list[str], TopicDecoder]:
    def decode(_topic: str, payload: bytes, ts_ms: int) -> list[Measurement]:
        return decode_tasmota_sensor(payload, ts_ms)

    return [f"tele/{topic}/SENSOR"], decode


def _broker(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise BridgeConfigError(f"mqtt_url must look like mqtt://host:1883, got {url!r}")
    return parts.hostname, parts.port or 1883


class MqttDeviceSource:
    """Buffers readings from device topics on a broker; each poll returns the new ones."""

    def __init__(
        self,
        name: str,
        mqtt_url: str,
        topics: list[str],
        decoder: TopicDecoder,
        *,
        meter: str | None = None,
        interval_s: float = 60.0,
        max_readings: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._host, self._port = _broker(mqtt_url)
        self._topics = topics
        self._decoder = decoder
        self._meter = meter or name
        self._interval_s = interval_s
        self._clock = clock
        self.buffer = ReadingBuffer(max_readings)
        self._client: mqtt.Client | None = None
        self._connected = False
        self._subscribed = False
        self._connect_error: str | None = None
        self._started_at = 0.0
        self.connect_grace_s = 10.0

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def ready(self) -> bool:
        """Connected and the broker acknowledged the subscriptions."""
        return self._connected and self._subscribed

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self._connect_error = f"broker refused the connection: {rc}"
            return
        self._connected = True
        self._connect_error = None
        client.subscribe([(t, 1) for t in self._topics])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        failed = [c for c in codes if c.is_failure]
        if failed:
            self._connect_error = f"broker refused the subscription: {failed[0]}"
            return
        self._subscribed = True

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._connected = False
        self._subscribed = False
        self._connect_error = f"disconnected from broker: {rc}"

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        self._connect_error = "cannot connect to the broker"

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ts_ms = int(self._clock() * 1000)
        try:
            readings = to_readings(self._meter, self._decoder(msg.topic, bytes(msg.payload), ts_ms))
        except DecodeError as exc:
            self.buffer.reject(f"{msg.topic}: {exc}")
            return
        self.buffer.add(readings)

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after a drop."""
        if self._client is not None:
            return
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"tally-bridge-{self._name}-{uuid.uuid4().hex[:8]}",
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.connect_async(self._host, self._port, keepalive=30)
        client.loop_start()
        self._started_at = self._clock()
        self._client = client

    async def read(self, now: datetime) -> Sequence[Reading]:
        self.start()
        readings = self.buffer.drain()
        waited = self._clock() - self._started_at
        if not readings and not self._connected and waited > self.connect_grace_s:
            reason = self._connect_error or "not connected to the broker"
            raise SourceError(
                f"{self._name}: {reason} ({self._host}:{self._port})", source=self._name
            )
        return readings

    async def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
            self._connected = False
