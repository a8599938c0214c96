"""MQTT publisher: a thin asyncio adapter over paho-mqtt 2.x (QoS 1, persistent session).

paho runs in the event loop's thread: its socket is watched with ``add_reader``/``add_writer``
(paho's external-loop callbacks) and ``loop_misc`` runs every tenth of the keepalive (at
least 1 s apart) for keepalive. Only the
blocking TCP/TLS connect runs in an executor; paho's socket callbacks fired from there are
handed back with ``loop.call_soon_threadsafe`` (from the loop's own thread with ``call_soon``:
no wake-up write). A packet paho queues is written at once while the socket takes it; the
socket is watched for writing only while some of it is left. ``publish`` returns a future
keyed by paho's mid and completed by ``on_publish`` (PUBACK). paho return codes become
``PublishError`` here, once. No reconnect logic: the runner owns retries (backoff with jitter).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import BrokerConfig
from agent.connect_errors import explain_refusal, explain_transport
from agent.errors import ConfigError, PublishError


class MqttPublisher:
    """The ``Publisher`` port on paho-mqtt; client id = device id, clean_session=False."""

    def __init__(
        self, *, client_id: str, broker: BrokerConfig, will_topic: str | None = None,
        will_payload: bytes | None = None, max_in_flight: int = 32,
    ) -> None:
        self._broker = broker
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
            protocol=mqtt.MQTTv311, reconnect_on_failure=False,
        )
        self._client.max_inflight_messages_set(max_in_flight)
        self._client.max_queued_messages_set(0)
        user, password = broker.credentials
        if user is not None:
            self._client.username_pw_set(user, password)
        if broker.use_tls:
            try:
                ctx = ssl.create_default_context(
                    cafile=str(broker.ca_file) if broker.ca_file else None
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"broker.ca_file: cannot load {broker.ca_file}: {exc}") from exc
            if broker.cert_file is not None:
                try:
                    ctx.load_cert_chain(str(broker.cert_file),
                                        str(broker.key_file) if broker.key_file else None)
                except (OSError, ssl.SSLError) as exc:
                    raise ConfigError(
                        f"broker.cert_file/key_file: cannot load {broker.cert_file}: {exc}"
                    ) from exc
            self._client.tls_set_context(ctx)
        if will_topic is not None and will_payload is not None:
            self._client.will_set(will_topic, will_payload, qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._handlers: dict[str, Callable[[bytes], None]] = {}
        self._client.on_socket_open = self._on_socket_open
        self._client.on_socket_close = self._on_socket_close
        self._client.on_socket_register_write = self._on_register_write
        self._client.on_socket_unregister_write = self._on_unregister_write
        self._loop: asyncio.AbstractEventLoop | None = None
        self._futures: dict[int, asyncio.Future[None]] = {}
        self._connack: asyncio.Future[None] | None = None
        self._connected = False
        self._down = asyncio.Event()
        self._down.set()
        self._misc: asyncio.Task[None] | None = None
        self.last_disconnect: str | None = None

    def listen(self, topics: tuple[str, ...], handler: Callable[[str, bytes], None]) -> None:
        """Subscribe to ``topics`` (QoS 1) on every connection; ``handler(topic, payload)``
        runs in the event loop."""
        for topic in topics:
            self.subscribe(topic, functools.partial(handler, topic))

    # -- paho callbacks (may run in the executor thread during connect) --------------------

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # the executor thread of the connect
            running = None
        if running is loop:
            loop.call_soon(fn, *args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    # paho hands over the socket object; its fd is taken at once because paho closes the
    # socket right after ``on_socket_close`` returns, before our deferred call runs.

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._soon(self._watch, sock.fileno())

    def _watch(self, fd: int) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        self._client.loop_read()

    def _writable(self) -> None:
        self._client.loop_write()

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._soon(self._unwatch, sock.fileno())

    def _unwatch(self, fd: int) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._soon(self._want_write, sock.fileno())

    def _want_write(self, fd: int) -> None:
        assert self._loop is not None
        sock = self._client.socket()
        if sock is not None and sock.fileno() == fd:  # still the connection that asked
            self._client.loop_write()  # most packets fit the socket buffer at once
            if not self._client.want_write():
                return
        with contextlib.suppress(ValueError, OSError):
            self._loop.add_writer(fd, self._writable)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._soon(self._no_write, sock.fileno())

    def _no_write(self, fd: int) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(fd)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self._soon(self._connected_cb, rc)

    def _connected_cb(self, rc: ReasonCode) -> None:
        fut = self._connack
        if rc.is_failure:
            if fut is not None and not fut.done():
                fut.set_exception(
                    PublishError(explain_refusal(int(rc.value), str(rc)), rc=int(rc.value))
                )
            return
        self._connected = True
        self._down.clear()
        for topic in self._handlers:  # renewed on every connection: the session may be new
            self._client.subscribe(topic, qos=1)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self._soon(self._disconnected_cb, str(rc))

    def _disconnected_cb(self, reason: str) -> None:
        self._connected = False
        self.last_disconnect = reason
        self._down.set()
        fut = self._connack
        if fut is not None and not fut.done():
            fut.set_exception(PublishError(f"connection closed during connect: {reason}"))

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        self._soon(self._acked, mid, rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._soon(self._deliver, msg.topic, bytes(msg.payload))

    def _deliver(self, topic: str, payload: bytes) -> None:
        handler = self._handlers.get(topic)
        if handler is not None:
            handler(payload)

    def _acked(self, mid: int, rc: ReasonCode) -> None:
        fut = self._futures.pop(mid, None)
        if fut is None or fut.done():
            return
        if rc.is_failure:
            fut.set_exception(PublishError(f"broker rejected message: {rc}", rc=int(rc.value)))
        else:
            fut.set_result(None)

    # -- port ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    async def connect(self) -> None:
        """Open the TCP/TLS connection and wait for a successful CONNACK."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._connack = loop.create_future()
        try:
            rc = await asyncio.wait_for(
                loop.run_in_executor(
                    None, self._client.connect, self._broker.host, self._broker.port,
                    self._broker.keepalive_s,
                ),
                self._broker.connect_timeout_s,
            )
        except (OSError, ssl.SSLError, TimeoutError, ValueError) as exc:
            raise PublishError(
                f"cannot connect to {self._broker.host}:{self._broker.port}: "
                f"{explain_transport(exc)}"
            ) from exc
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise PublishError(f"connect failed: {mqtt.error_string(rc)}", rc=int(rc))
        try:
            await asyncio.wait_for(asyncio.shield(self._connack), self._broker.connect_timeout_s)
        except TimeoutError as exc:
            self._client.disconnect()
            raise PublishError("no CONNACK from the broker in time") from exc
        except PublishError:
            self._client.disconnect()
            raise
        if self._misc is None or self._misc.done():
            self._misc = loop.create_task(self._housekeeping(), name="mqtt-misc")

    async def _housekeeping(self) -> None:
        # loop_misc only sends PINGREQ and notices a missing PINGRESP: a tenth of the keepalive
        # is precise enough, and spares hosts running thousands of clients a wakeup per second
        period = max(1.0, self._broker.keepalive_s / 10)
        while self._connected:
            self._client.loop_misc()
            await asyncio.sleep(period)

    async def wait_disconnected(self) -> None:
        await self._down.wait()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> asyncio.Future[None]:
        """Hand a QoS 1 message to paho; the future completes on PUBACK."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            info = self._client.publish(topic, payload, qos=1, retain=retain)
        except ValueError as exc:
            raise PublishError(f"cannot publish to {topic!r}: {exc}") from exc
        # NO_CONN: paho keeps QoS 1 messages queued and sends them after reconnecting.
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise PublishError(f"publish failed: {mqtt.error_string(info.rc)}", rc=int(info.rc))
        fut: asyncio.Future[None] = loop.create_future()
        self._futures[info.mid] = fut
        return fut

    def subscribe(self, topic: str, handler: Callable[[bytes], None]) -> None:
        """Hand every message on ``topic`` to ``handler``; subscribed on each (re)connection."""
        self._handlers[topic] = handler
        if self._connected:
            self._client.subscribe(topic, qos=1)

    async def close(self) -> None:
        """Disconnect cleanly (no last will) and fail whatever is still unacknowledged."""
        if self._connected:
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._down.wait(), 2.0)
        if self._misc is not None:
            self._misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._misc
        self._connected = False
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(PublishError("publisher closed before PUBACK"))
                fut.exception()  # mark retrieved: the caller re-sends from the buffer
        self._futures.clear()
