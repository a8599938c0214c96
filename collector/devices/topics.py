"""The MQTT topics of one device (``tally/v1/<device>/…``) and what it may do with them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeviceTopics"]


@dataclass(frozen=True, slots=True)
class DeviceTopics:
    """A device publishes readings, status and SenML; it reads its config and acks."""

    device_id: str

    def _t(self, leaf: str) -> str:
        return f"tally/v1/{self.device_id}/{leaf}"

    @property
    def readings(self) -> str:
        return self._t("readings")

    @property
    def status(self) -> str:
        return self._t("status")

    @property
    def senml(self) -> str:
        return self._t("senml")

    @property
    def config(self) -> str:
        return self._t("config")

    @property
    def ack(self) -> str:
        return self._t("ack")

    @property
    def publish(self) -> tuple[str, ...]:
        return (self.readings, self.status, self.senml)

    @property
    def subscribe(self) -> tuple[str, ...]:
        return (self.config, self.ack)

    def as_dict(self) -> dict[str, str]:
        return {"readings": self.readings, "status": self.status, "senml": self.senml,
                "config": self.config, "ack": self.ack}
