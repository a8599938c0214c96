"""Agent test fixtures: a private broker whose persistence really reaches its data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.embedded.broker import MqttBroker


class DurableBroker(MqttBroker):
    """MqttBroker that keeps its persistence when run as root.

    Mosquitto started by root drops to the ``mosquitto`` user, which cannot write the
    root-owned pytest tmp dir, so sessions and queued messages were silently not persisted
    across ``stop()``/``start()``. ``user root`` keeps it root (ignored when not root).
    """

    def _command(self) -> list[str]:
        cmd = super()._command()
        if self.kind == "mosquitto" and hasattr(os, "geteuid") and os.geteuid() == 0:
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(conf.read_text(encoding="utf-8") + "user root\n", encoding="utf-8")
        return cmd


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[MqttBroker]:
    """A private broker (stop/start allowed) that keeps sessions and queued messages."""
    broker = DurableBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()
