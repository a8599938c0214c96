"""Smart plugs on MQTT: Shelly (Gen1, Gen2+) and Tasmota messages built from a ``LoadModel``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge.simulators.load import LoadModel

__all__ = ["PlugKind", "plug_messages", "run_plug"]

PlugKind = Literal["shelly-gen2", "shelly-gen1", "tasmota"]


def plug_messages(
    kind: PlugKind, ident: str, model: LoadModel, t_s: float
) -> list[tuple[str, bytes]]:
    """(topic, payload) pairs a plug of ``kind`` publishes at ``t_s`` (energy in its own units)."""
    wh = model.import_kwh(t_s) * 1000
    watts = model.power_w(t_s)
    if kind == "shelly-gen2":
        status = {"id": 0, "source": "timer", "output": True, "apower": round(watts, 1),
                  "voltage": 230.1, "current": round(watts / 230.1, 3),
                  "aenergy": {"total": round(wh, 3), "minute_ts": int(t_s // 60 * 60)}}  # fmt: skip
        return [(f"{ident}/status/switch:0", json.dumps(status).encode())]
    if kind == "shelly-gen1":
        base = f"shellies/{ident}/relay/0"
        return [
            (f"{base}/power", f"{watts:.2f}".encode()),
            (f"{base}/energy", str(round(wh * 60)).encode()),
        ]
    local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_s))
    sensor = {"Time": local, "ENERGY": {"TotalStartTime": "2024-01-01T00:00:00",
              "Total": round(wh / 1000, 3), "Yesterday": 0.0, "Today": 0.0, "Power": round(watts),
              "ApparentPower": round(watts / 0.95), "ReactivePower": round(watts * 0.33),
              "Factor": 0.95, "Voltage": 230, "Current": round(watts / 230, 3)}}  # fmt: skip
    return [(f"tele/{ident}/SENSOR", json.dumps(sensor).encode())]


async def run_plug(
    kind: PlugKind,
    ident: str,
    model: LoadModel,
    *,
    mqtt_url: str = "mqtt://127.0.0.1:1883",
    interval_s: float = 10.0,
    count: int = 0,
    clock: Callable[[], float] = time.time,
) -> int:
    """Publish every ``interval_s`` (``count`` rounds, 0 = forever); returns messages sent."""
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"tally-sim-{kind}-{uuid.uuid4().hex[:6]}",
    )
    await asyncio.to_thread(client.connect, parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    sent = rounds = 0
    try:
        while count == 0 or rounds < count:
            for topic, payload in plug_messages(kind, ident, model, clock()):
                info = client.publish(topic, payload, qos=1)
                await asyncio.to_thread(info.wait_for_publish, 5)
                sent += 1
            rounds += 1
            if count == 0 or rounds < count:
                await asyncio.sleep(interval_s)
    finally:
        client.loop_stop()
        client.disconnect()
    return sent
