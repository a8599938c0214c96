"""The port through which device identities are created and revoked at the broker."""

from __future__ import annotations

from typing import Protocol

__all__ = ["BrokerAccess"]


class BrokerAccess(Protocol):
    """Creates, re-keys and revokes device credentials and access rules at the MQTT broker.

    Every method is idempotent and returns only when the broker has applied the change;
    failures raise ``BrokerAccessError``."""

    def provision(self, device_id: str, password: str) -> None:
        """Create (or re-key and enable) the device's client and its per-device role."""
        ...

    def revoke(self, device_id: str) -> None:
        """Disable and delete the device's client (its live connection is dropped)."""
        ...

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish a retained message (device configuration), QoS 1."""
        ...
