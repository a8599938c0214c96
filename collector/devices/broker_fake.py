"""An in-memory ``BrokerAccess`` for tests of the service and routes."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MemoryBrokerAccess"]


@dataclass
class MemoryBrokerAccess:
    """Remembers the credentials and retained messages it was given."""

    passwords: dict[str, str] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    retained: dict[str, bytes] = field(default_factory=dict)

    def provision(self, device_id: str, password: str) -> None:
        self.passwords[device_id] = password

    def revoke(self, device_id: str) -> None:
        self.passwords.pop(device_id, None)
        self.revoked.append(device_id)

    def publish_retained(self, topic: str, payload: bytes) -> None:
        self.retained[topic] = payload
