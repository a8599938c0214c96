"""The MQTT adapter (paho-mqtt 2.x): a persistent session with manual acknowledgement.

Every paho call happens in this adapter's network thread (paho's packet writer is not safe
for concurrent use): the thread connects, reconnects with jittered exponential backoff, runs
``client.loop``, hands each message to the sink (the writer's queue) and sends the PUBACKs
that :meth:`MqttConsumer.ack` queued from the writer thread. A message is never acknowledged
before the writer has committed it, so un-acknowledged messages stay in the broker's session
(``clean_session=False``) and are redelivered after a crash or a reconnection.

Message ids belong to one connection: a broker without persistence (or a lost session) starts
them again, so a PUBACK queued for a message received on an earlier connection could
acknowledge a *different* message on the new one. Every message carries the connection
``generation`` it arrived on, and a PUBACK of an older generation is dropped, never sent (the
broker redelivers the message, if it still has it, and deduplication absorbs it). The
end-to-end acknowledgements (:meth:`MqttConsumer.confirm`) are published by the same thread,
QoS 1 and retained, on ``tally/v1/<device>/ack``.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.clock import Clock

from .backoff import Backoff
from .decoders import READINGS_FILTER, STATUS_FILTER
from .messages import InboundMessage, OutboundAck

__all__ = ["MqttConsumer", "MqttSettings"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how to subscribe."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "tally-collector"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    keepalive_s: int = 30
    topics: tuple[str, ...] = (READINGS_FILTER, STATUS_FILTER)
    qos: int = 1
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0


class MqttConsumer:
    """Subscribes and feeds ``sink``; implements ``Acknowledger`` for the writer."""

    def __init__(
        self,
        settings: MqttSettings,
        sink: Callable[[InboundMessage], None],
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._clock = clock
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s, rng)
        self._acks: queue.SimpleQueue[tuple[int, int, int]] = queue.SimpleQueue()
        self._confirms: queue.SimpleQueue[OutboundAck] = queue.SimpleQueue()
        self._generation = 0  # successful connections so far (written by the network thread)
        self.stale_acks = 0  # PUBACKs dropped because their connection had ended
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        """Queue PUBACKs for stored messages (sent by the network thread)."""
        for m in messages:
            if m.qos > 0:
                self._acks.put((m.mid, m.qos, m.generation))

    def confirm(self, acks: Sequence[OutboundAck]) -> None:
        """Queue end-to-end acknowledgements (published, retained, by the network thread)."""
        for a in acks:
            self._confirms.put(a)

    @property
    def generation(self) -> int:
        return self._generation

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="mqtt-consumer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send queued acknowledgements, disconnect and join the network thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _make_client(self) -> mqtt.Client:
        s = self._settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(1000)  # acknowledgements to devices, QoS 1
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _run(self) -> None:
        client = self._client
        s = self._settings
        while not self._stop.is_set():
            if not self._connected.is_set() and not self._socket_open():
                try:
                    client.connect(s.host, s.port, keepalive=s.keepalive_s)
                except (OSError, ValueError) as exc:
                    self._wait_retry(f"cannot connect to {s.host}:{s.port}: {exc}")
                    continue
            rc = client.loop(timeout=0.02)
            self._send_acks()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._connected.clear()
                self._wait_retry(f"connection lost: {mqtt.error_string(rc)}")
        self._send_acks()
        for _ in range(10):  # let the PUBACKs leave before DISCONNECT
            if client.loop(timeout=0.01) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        client.disconnect()
        client.loop(timeout=0.05)
        self._connected.clear()

    def _socket_open(self) -> bool:
        return self._client.socket() is not None

    def _wait_retry(self, why: str) -> None:
        delay = self._backoff.next_delay()
        _log.warning("MQTT %s; retrying in %.1fs", why, delay)
        self._stop.wait(delay)

    def _send_acks(self) -> None:
        while True:
            try:
                confirm = self._confirms.get_nowait()
            except queue.Empty:
                break
            # QoS 1, retained: the last one per device is the watermark a reconnecting agent
            # reads at once. If it is lost, the agent re-sends and is acknowledged again.
            self._client.publish(confirm.topic, confirm.payload, qos=1, retain=True)
        while True:
            try:
                mid, qos, generation = self._acks.get_nowait()
            except queue.Empty:
                return
            if generation != self._generation:
                self.stale_acks += 1
                continue
            self._client.ack(mid, qos)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            _log.error("MQTT broker refused the connection: %s", reason_code)
            return
        self._generation += 1
        client.subscribe([(t, self._settings.qos) for t in self._settings.topics])
        self._backoff.reset()
        _log.info("MQTT connected (session present: %s)", flags.session_present)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for topic, rc in zip(self._settings.topics, reason_codes, strict=False):
            if rc.is_failure:
                _log.error("MQTT subscription to %s refused: %s", topic, rc)
        self._connected.set()  # ready: the subscriptions are in place

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")
        now_ms = int(self._clock.now().timestamp() * 1000)
        self._sink(InboundMessage(topic, bytes(msg.payload), msg.mid, msg.qos, now_ms,
                                  self._generation))
