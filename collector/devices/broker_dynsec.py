"""``BrokerAccess`` over Mosquitto's dynamic-security plugin (paho-mqtt 2.x, MQTT 5).

One admin connection (the account made by ``mosquitto_ctrl dynsec init``), kept open with
paho's network thread. A change is one message of commands to ``$CONTROL/dynamic-security/v1``;
the plugin answers every command on ``…/response`` with the ``correlationData`` it was given, so
the adapter waits for exactly its answers. paho and plugin errors are translated here, once, to
``BrokerAccessError``.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.errors import BrokerAccessError

from . import dynsec

__all__ = ["DynsecBrokerAccess", "DynsecSettings"]

_log = logging.getLogger(__name__)
# Answers that mean "already in the wanted state" for an idempotent operation.
_ALREADY = ("already exists",)
_GONE = ("not found",)


@dataclass(frozen=True, slots=True)
class DynsecSettings:
    host: str
    port: int
    username: str
    password: str
    tls: bool = False
    ca_file: Path | None = None
    timeout_s: float = 10.0


class DynsecBrokerAccess:
    """Implements ``BrokerAccess``; ``close`` ends the admin connection."""

    def __init__(self, settings: DynsecSettings) -> None:
        self._s = settings
        self._lock = threading.Lock()  # connecting and handing a message to paho
        self._cond = threading.Condition()
        self._answers: dict[str, dict[str, object]] = {}
        self._connected = threading.Event()
        self._refused: str | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"tally-dynsec-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            ctx = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None
            )
            self._client.tls_set_context(ctx)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._started = False

    # -- paho callbacks (network thread) --
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: ReasonCode,
        _p: Properties | None = None,
    ) -> None:
        if rc.is_failure:
            self._refused = str(rc)
            self._connected.set()
            return
        self._refused = None
        client.subscribe(dynsec.RESPONSE_TOPIC, qos=1)
        self._connected.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, _rc: ReasonCode, _p: object = None
    ) -> None:
        self._connected.clear()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            doc = json.loads(msg.payload)
            responses = doc.get("responses", [])
        except (ValueError, AttributeError):
            _log.warning("unreadable dynamic-security response: %.200r", msg.payload)
            return
        with self._cond:
            for r in responses:
                if isinstance(r, dict) and isinstance(r.get("correlationData"), str):
                    self._answers[r["correlationData"]] = r
            self._cond.notify_all()

    # -- connection --
    def _ensure_connected(self) -> None:
        if self._connected.is_set() and self._refused is None:
            return
        if not self._started:
            try:
                self._client.connect(self._s.host, self._s.port, keepalive=30)
            except (OSError, ssl.SSLError) as exc:
                raise BrokerAccessError(
                    f"cannot reach the broker at {self._s.host}:{self._s.port}: {exc}"
                ) from exc
            self._client.loop_start()
            self._started = True
        if not self._connected.wait(self._s.timeout_s):
            raise BrokerAccessError(f"broker at {self._s.host}:{self._s.port} did not answer")
        if self._refused is not None:
            raise BrokerAccessError(
                f"broker refused the dynamic-security admin account: {self._refused}"
            )

    def close(self) -> None:
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False

    # -- commands --
    def execute(
        self, commands: Sequence[dynsec.Command], *, tolerate: Sequence[str] = ()
    ) -> list[str | None]:
        """Send ``commands`` in one message; the error text of each (``None`` = done).

        Errors containing one of ``tolerate`` are returned; any other raises."""
        answers = self._exchange(commands)
        out: list[str | None] = []
        for cmd, ans in zip(commands, answers, strict=True):
            error = ans.get("error")
            if error is not None and not any(t in str(error).lower() for t in tolerate):
                raise BrokerAccessError(
                    f"broker refused {cmd.get('command')}: {error}", command=str(cmd.get("command"))
                )
            out.append(None if error is None else str(error))
        return out

    def _exchange(self, commands: Sequence[dynsec.Command]) -> list[dict[str, object]]:
        """Send one command message and wait for its answers. Several threads may have
        messages in flight at once (answers are matched by correlation data), so concurrent
        enrollments share the broker round trip instead of queueing behind each other."""
        ids = [uuid.uuid4().hex for _ in commands]
        tagged = [{**c, "correlationData": i} for c, i in zip(commands, ids, strict=True)]
        with self._lock:
            self._ensure_connected()
            info = self._client.publish(dynsec.CONTROL_TOPIC, dynsec.encode(tagged), qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise BrokerAccessError(f"cannot send to the broker: {mqtt.error_string(info.rc)}")
        with self._cond:
            done = self._cond.wait_for(
                lambda: all(i in self._answers for i in ids), self._s.timeout_s
            )
            answers = [self._answers.pop(i, None) for i in ids]
        if not done:
            raise BrokerAccessError(
                "the broker did not answer the dynamic-security commands (is the plugin "
                "loaded and may this account publish to $CONTROL/dynamic-security/#?)",
                command=str(commands[0].get("command", "")),
            )
        return [a if a is not None else {} for a in answers]

    def provision(self, device_id: str, password: str) -> None:
        errors = self.execute(dynsec.provision_commands(device_id, password), tolerate=_ALREADY)
        if errors[1] is not None:  # the client exists: new secret, enabled, role attached
            self.execute(dynsec.reprovision_commands(device_id, password))
            if dynsec.role_name(device_id) not in self.client_roles(device_id):
                self.execute([{"command": "addClientRole", "username": device_id,
                               "rolename": dynsec.role_name(device_id), "priority": 0}])

    def revoke(self, device_id: str) -> None:
        self.execute(dynsec.revoke_commands(device_id), tolerate=_GONE)

    def bootstrap(self, collector_username: str, collector_password: str) -> None:
        """Once per broker: the ``tally-collector`` role, held by this admin account (it
        publishes device configs) and by the collector's own account (created here)."""
        self.execute(dynsec.collector_role_commands(collector_username, collector_password),
                     tolerate=_ALREADY)
        # Changing the roles of the connected admin account makes Mosquitto drop this very
        # connection, and the plugin then answers "Internal error"; paho reconnects, and the
        # role is checked afterwards.
        self.execute([{"command": "addClientRole", "username": self._s.username,
                       "rolename": dynsec.COLLECTOR_ROLE, "priority": 0}],
                     tolerate=(*_ALREADY, "internal error"))
        time.sleep(0.2)
        for _ in range(50):
            try:
                if dynsec.COLLECTOR_ROLE in self.client_roles(self._s.username):
                    return
            except BrokerAccessError:
                pass
            time.sleep(0.1)
        raise BrokerAccessError(f"{self._s.username} did not get role {dynsec.COLLECTOR_ROLE}")

    def client_roles(self, username: str) -> list[str]:
        """The role names of a broker client."""
        answer = self._exchange([{"command": "getClient", "username": username}])[0]
        if answer.get("error"):
            raise BrokerAccessError(f"getClient {username}: {answer['error']}",
                                    command="getClient")
        data = answer.get("data")
        client = data.get("client", {}) if isinstance(data, dict) else {}
        roles = client.get("roles", []) if isinstance(client, dict) else []
        return [str(r.get("rolename")) for r in roles if isinstance(r, dict)]

    def publish_retained(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self._ensure_connected()
            info = self._client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(self._s.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise BrokerAccessError(f"cannot publish {topic}: {exc}") from exc
        if not info.is_published():
            raise BrokerAccessError(f"the broker did not acknowledge {topic}")
