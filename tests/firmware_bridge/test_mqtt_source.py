"""Shelly and Tasmota sources against a real MQTT broker (``mqtt_url`` fixture)."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.errors import SourceError
from agent.protocol import Kind
from firmware_bridge.mqtt_devices.source import MqttDeviceSource, shelly_decoder, tasmota_decoder
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.mqtt_plug import PlugKind, run_plug
from tests.firmware_bridge.conftest import T0, FakeClock

SHELLY_STATUS = b'{"id":0,"output":true,"apower":42.0,"aenergy":{"total":1500.25}}'
TASMOTA = b'{"Time":"2024-01-01T00:00:00","ENERGY":{"Total":3.25,"Today":0.5,"Power":120}}'


def _publish(url: str, items: list[tuple[str, bytes]]) -> None:
    parts = urlsplit(url)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"t-pub-{uuid.uuid4().hex[:8]}"
    )
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    for topic, payload in items:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


async def _until(source: MqttDeviceSource, cond: str) -> None:
    for _ in range(100):
        if (cond == "ready" and source.ready) or (cond == "data" and len(source.buffer)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {cond}")


async def test_shelly_gen2_through_broker(mqtt_url: str, clock: FakeClock) -> None:
    """A status/switch:0 message published to the broker comes out of the next poll."""
    device = f"shellyplus1pm-{uuid.uuid4().hex[:8]}"
    topics, decoder = shelly_decoder(device, 2, 0)
    source = MqttDeviceSource("plug", mqtt_url, topics, decoder, clock=clock)
    try:
        assert await source.read(clock.now()) == []
        await _until(source, "ready")
        await asyncio.to_thread(_publish, mqtt_url, [(f"{device}/status/switch:0", SHELLY_STATUS)])
        await _until(source, "data")
        got = {r.metric: r for r in await source.read(clock.now())}
    finally:
        await source.close()
    assert (got["energy"].value, got["energy"].unit, got["energy"].kind) == (
        1500.25,
        "Wh",
        Kind.CUMULATIVE,
    )
    assert got["power"].value == 42.0


async def test_shelly_gen1_and_tasmota_through_broker(mqtt_url: str, clock: FakeClock) -> None:
    """Gen1 watt-minutes and a Tasmota SENSOR message decode through the real broker."""
    dev, topic = f"shelly1pm-{uuid.uuid4().hex[:6]}", f"plug_{uuid.uuid4().hex[:6]}"
    t1, d1 = shelly_decoder(dev, 1, 0)
    t2, d2 = tasmota_decoder(topic)
    gen1 = MqttDeviceSource("gen1", mqtt_url, t1, d1, clock=clock)
    tas = MqttDeviceSource("tasmota", mqtt_url, t2, d2, clock=clock)
    try:
        for s in (gen1, tas):
            await s.read(clock.now())
            await _until(s, "ready")
        await asyncio.to_thread(_publish, mqtt_url, [
            (f"shellies/{dev}/relay/0/energy", b"6000"),
            (f"shellies/{dev}/relay/0/power", b"12.5"),
            (f"tele/{topic}/SENSOR", TASMOTA),
            (f"tele/{topic}/SENSOR", b"not json"),
        ])  # fmt: skip
        for _ in range(100):
            if len(gen1.buffer) >= 2 and tas.buffer.rejected:
                break
            await asyncio.sleep(0.05)
        g = {r.metric: r.value for r in await gen1.read(clock.now())}
        t = {r.metric: r.value for r in await tas.read(clock.now())}
    finally:
        await gen1.close()
        await tas.close()
    assert g == {"energy": 100.0, "power": 12.5}
    assert (t["energy"], t["power"]) == (3.25, 120.0)
    assert tas.buffer.rejected == 1


async def test_unreachable_broker_is_flagged(clock: FakeClock) -> None:
    """When the broker cannot be reached past the grace period, polls fail with SourceError."""
    topics, decoder = tasmota_decoder("x")
    source = MqttDeviceSource("tasmota", "mqtt://127.0.0.1:1", topics, decoder, clock=clock)
    try:
        assert await source.read(clock.now()) == []  # within the grace period
        clock.t += 60
        with pytest.raises(SourceError, match=r"127\.0\.0\.1:1"):
            await source.read(clock.now())
    finally:
        await source.close()


@pytest.mark.parametrize(
    ("kind", "generation_or_none"),
    [("shelly-gen2", 2), ("shelly-gen1", 1), ("tasmota", None)],
)
async def test_simulated_plugs_round_trip_through_broker(
    mqtt_url: str, clock: FakeClock, kind: PlugKind, generation_or_none: int | None
) -> None:
    """Each simulated plug's energy (Wh, watt-minutes or kWh on the wire) arrives as 1234.5 kWh."""
    ident = f"sim-{uuid.uuid4().hex[:8]}"
    if generation_or_none is None:
        topics, decoder = tasmota_decoder(ident)
    else:
        topics, decoder = shelly_decoder(ident, generation_or_none, 0)
    source = MqttDeviceSource("plug", mqtt_url, topics, decoder, clock=clock)
    try:
        await source.read(clock.now())
        await _until(source, "ready")
        sent = await run_plug(
            kind, ident, LoadModel(t0_s=T0), mqtt_url=mqtt_url, count=1, clock=clock
        )
        for _ in range(100):
            if len(source.buffer) >= sent:
                break
            await asyncio.sleep(0.05)
        got = {r.metric: r for r in await source.read(clock.now())}
    finally:
        await source.close()
    energy = got["energy"]
    kwh = energy.value / 1000 if energy.unit == "Wh" else energy.value
    assert kwh == pytest.approx(1234.5)
    assert got["power"].value == pytest.approx(1500.0, abs=1)
