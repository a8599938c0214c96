"""SenML over the local network: HTTP POST (h11 server) and UDP, buffered until polled."""

from __future__ import annotations

import asyncio
import socket

import httpx

from agent.protocol import Kind
from firmware_bridge.senml.servers import SenmlHttpSource, SenmlUdpSource
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.senml_device import make_pack, run_device
from tests.firmware_bridge.conftest import T0, FakeClock

PACK = b'[{"bn":"plug-1:","n":"energy","u":"kWh","s":12.5,"t":-10},{"n":"power","u":"W","v":230}]'


async def test_http_post_is_buffered_until_polled(clock: FakeClock) -> None:
    """A POSTed pack is answered 204 and its readings come out at the next poll, once."""
    source = SenmlHttpSource("senml", host="127.0.0.1", port=0, clock=clock)
    assert await source.read(clock.now()) == []  # starts the server
    url = f"http://127.0.0.1:{source.port}/senml"
    async with httpx.AsyncClient() as http:
        r = await http.post(url, content=PACK, headers={"content-type": "application/senml+json"})
    assert r.status_code == 204
    got = {x.metric: x for x in await source.read(clock.now())}
    assert (got["energy"].kind, got["energy"].value, got["energy"].meter) == (
        Kind.CUMULATIVE,
        12.5,
        "plug-1",
    )
    assert got["energy"].ts_ms == int(T0 * 1000) - 10_000
    assert await source.read(clock.now()) == []
    await source.close()


async def test_http_bad_pack_is_rejected_with_reason(clock: FakeClock) -> None:
    """An invalid pack gets 400 with the reason; wrong path 404; GET 405; nothing is buffered."""
    source = SenmlHttpSource("senml", host="127.0.0.1", port=0, clock=clock)
    await source.start()
    base = f"http://127.0.0.1:{source.port}"
    async with httpx.AsyncClient() as http:
        bad = await http.post(f"{base}/senml", content=b'[{"bver":99,"n":"a","v":1}]')
        missing = await http.post(f"{base}/other", content=PACK)
        get = await http.get(f"{base}/senml")
    assert (bad.status_code, missing.status_code, get.status_code) == (400, 404, 405)
    assert "version" in bad.text
    assert await source.read(clock.now()) == []
    assert source.buffer.rejected == 1
    await source.close()


async def test_http_keep_alive_serves_many_posts(clock: FakeClock) -> None:
    """One connection carries several packs (the simulated device reuses its connection)."""
    source = SenmlHttpSource("senml", host="127.0.0.1", port=0, clock=clock)
    await source.start()
    accepted = await run_device(
        LoadModel(t0_s=T0), http_url=f"http://127.0.0.1:{source.port}/senml",
        interval_s=0, count=5, clock=clock,
    )  # fmt: skip
    assert accepted == 5
    readings = await source.read(clock.now())
    assert len(readings) == 10
    await source.close()


async def test_udp_cbor_datagram(clock: FakeClock) -> None:
    """A CBOR pack in one UDP datagram becomes readings at the next poll."""
    source = SenmlUdpSource("senml-udp", host="127.0.0.1", port=0, clock=clock)
    await source.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(
            make_pack(LoadModel(t0_s=T0), T0, base_name="m:", cbor=True), ("127.0.0.1", source.port)
        )
        s.sendto(b"\xffgarbage", ("127.0.0.1", source.port))
    for _ in range(50):
        if len(source.buffer) and source.buffer.rejected:
            break
        await asyncio.sleep(0.02)
    got = {r.metric: r.value for r in await source.read(clock.now())}
    assert got == {"energy": 1234.5, "power": 1500.0}
    assert source.buffer.rejected == 1
    await source.close()
