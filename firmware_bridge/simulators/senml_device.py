"""A SenML-speaking device: builds packs from a ``LoadModel`` and posts them (HTTP or UDP)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import cbor2
import httpx

from firmware_bridge.senml.records import CBOR_LABELS
from firmware_bridge.simulators.load import LoadModel

__all__ = ["make_pack", "run_device"]

_LABEL_OF = {name: label for label, name in CBOR_LABELS.items()}


def make_pack(model: LoadModel, t_s: float, *, base_name: str, cbor: bool = False) -> bytes:
    """A pack with an energy register (sum ``s``) and power (value ``v``) at ``t_s``."""
    records: list[dict[str, object]] = [
        {"bn": base_name, "bt": round(t_s, 3), "n": "energy", "u": "kWh",
         "s": round(model.import_kwh(t_s), 6)},
        {"n": "power", "u": "W", "v": round(model.power_w(t_s), 3)},
    ]  # fmt: skip
    if cbor:
        return cbor2.dumps([{_LABEL_OF[k]: v for k, v in r.items()} for r in records])
    return json.dumps(records, separators=(",", ":")).encode()


async def run_device(
    model: LoadModel,
    *,
    http_url: str | None = None,
    udp: tuple[str, int] | None = None,
    base_name: str = "urn:dev:mac:0024befffe804ff1:",
    interval_s: float = 10.0,
    count: int = 0,
    clock: Callable[[], float] = time.time,
) -> int:
    """Send ``count`` packs (0 = forever) every ``interval_s``; returns how many were accepted."""
    loop = asyncio.get_running_loop()
    accepted = sent = 0
    transport: asyncio.DatagramTransport | None = None
    if udp is not None:
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=udp
        )
    async with httpx.AsyncClient(timeout=5) as http:
        try:
            while count == 0 or sent < count:
                pack = make_pack(model, clock(), base_name=base_name, cbor=udp is not None)
                if http_url is not None:
                    r = await http.post(
                        http_url, content=pack, headers={"content-type": "application/senml+json"}
                    )
                    accepted += r.status_code == 204
                if transport is not None:
                    transport.sendto(pack)
                    accepted += 1
                sent += 1
                if count == 0 or sent < count:
                    await asyncio.sleep(interval_s)
        finally:
            if transport is not None:
                transport.close()
    return accepted
