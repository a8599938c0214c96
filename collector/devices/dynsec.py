"""Mosquitto dynamic-security commands for device identities (pure: builds JSON documents).

Each device gets a client (username = device id, password = the agent-made secret, stored by
Mosquitto as a salted PBKDF2-SHA512 hash) and a role of its own, ``device-<id>``, whose ACLs
allow publishing only to its readings/status/SenML topics and subscribing only to its config
and ack topics. Everything else is denied by the plugin's defaults (publishClientSend and
subscribe deny). Commands are published to ``$CONTROL/dynamic-security/v1``; answers arrive on
``…/response`` in the same order (``docs/security.md``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from .topics import DeviceTopics

__all__ = [
    "COLLECTOR_ROLE",
    "CONTROL_TOPIC",
    "RESPONSE_TOPIC",
    "collector_role_commands",
    "encode",
    "provision_commands",
    "reprovision_commands",
    "revoke_commands",
    "role_name",
]

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = "$CONTROL/dynamic-security/v1/response"
COLLECTOR_ROLE: Final = "tally-collector"

Command = dict[str, object]


def role_name(device_id: str) -> str:
    return f"device-{device_id}"


def _device_acls(device_id: str) -> list[dict[str, object]]:
    topics = DeviceTopics(device_id)
    acls: list[dict[str, object]] = [
        {"acltype": "publishClientSend", "topic": t, "priority": 0, "allow": True}
        for t in topics.publish
    ]
    acls += [
        {"acltype": "subscribeLiteral", "topic": t, "priority": 0, "allow": True}
        for t in topics.subscribe
    ]
    # Delivery of what it may subscribe to is left to the plugin's default
    # (publishClientReceive: allow); every ACL entry makes the plugin's file, which Mosquitto
    # 2.0 rewrites whole on every change, bigger for every later enrollment.
    return acls


def provision_commands(device_id: str, password: str) -> list[Command]:
    """A new device: its role, then its client holding that role."""
    role = role_name(device_id)
    return [
        {"command": "createRole", "rolename": role, "acls": _device_acls(device_id)},
        {"command": "createClient", "username": device_id, "password": password,
         "roles": [{"rolename": role, "priority": 0}]},
    ]


def reprovision_commands(device_id: str, password: str) -> list[Command]:
    """A device that exists at the broker gets a new secret and is enabled again."""
    return [
        {"command": "setClientPassword", "username": device_id, "password": password},
        {"command": "enableClient", "username": device_id},
    ]


def revoke_commands(device_id: str) -> list[Command]:
    """Disable (Mosquitto drops its live connection), then delete client and role."""
    return [
        {"command": "disableClient", "username": device_id},
        {"command": "deleteClient", "username": device_id},
        {"command": "deleteRole", "rolename": role_name(device_id)},
    ]


def collector_role_commands(username: str, password: str) -> list[Command]:
    """The collector's own broker account: read every device topic (also through shared
    subscriptions) and publish device configs and acks."""
    acls: list[dict[str, object]] = [
        {"acltype": "subscribePattern", "topic": "tally/v1/#", "priority": 0, "allow": True},
        {"acltype": "subscribePattern", "topic": "$share/+/tally/v1/#", "priority": 0,
         "allow": True},
        {"acltype": "publishClientSend", "topic": "tally/v1/+/config", "priority": 0,
         "allow": True},
        {"acltype": "publishClientSend", "topic": "tally/v1/+/ack", "priority": 0,
         "allow": True},
    ]
    return [
        {"command": "createRole", "rolename": COLLECTOR_ROLE, "acls": acls},
        {"command": "createClient", "username": username, "password": password,
         "roles": [{"rolename": COLLECTOR_ROLE, "priority": 0}]},
    ]


def encode(commands: Sequence[Command]) -> bytes:
    return json.dumps({"commands": list(commands)}).encode()
