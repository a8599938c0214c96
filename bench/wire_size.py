"""Bytes per reading on the wire, JSON vs CBOR, for realistic batches.

    python bench/wire_size.py [--readings 1000] [--interval-s 10]

Builds batches the way the agent does: the simulated energy (kWh, 3 decimals), water (m³,
4 decimals) and data (GB, 6 decimals) meters polled every ``interval-s`` seconds, readings split
evenly over the 3 series, then encodes each batch with ``agent.protocol.encode_batch``.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta

from agent.buffer_fake import MemoryBuffer
from agent.protocol import Batch, Encoding, Reading, encode_batch, series_from_readings
from agent.sources.simulated import (
    SimulatedDataCounter,
    SimulatedEnergyMeter,
    SimulatedWaterMeter,
)


async def readings(n: int, interval_s: float) -> list[Reading]:
    store = MemoryBuffer()
    meters = [SimulatedEnergyMeter("house-energy", interval_s, store, seed=1, start=18_342.5),
              SimulatedWaterMeter("house-water", interval_s, store, seed=1, start=734.2),
              SimulatedDataCounter("router-data", interval_s, store, seed=1, start=5120.0)]
    start = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    out: list[Reading] = []
    for i in range(n // len(meters)):
        now = start + timedelta(seconds=interval_s * i)
        for m in meters:
            out.extend(await m.read(now))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=1000)
    ap.add_argument("--interval-s", type=float, default=10.0)
    args = ap.parse_args()
    print(f"{'batch':<34} {'readings':>8} {'JSON B':>8} {'B/rdg':>6} {'CBOR B':>8} {'B/rdg':>6}")
    for n, label in ((args.readings, f"{args.readings} readings, 3 series"),
                     (99, "99 readings, 3 series"), (3, "3 readings (one poll)")):
        rs = asyncio.run(readings(n, args.interval_s))
        batch = Batch("gw-0001", 1_795_000_000_000_000, 1_795_000_000_000, "0.1.0",
                      series_from_readings(rs))
        j = len(encode_batch(batch, Encoding.JSON))
        c = len(encode_batch(batch, Encoding.CBOR))
        k = batch.reading_count
        print(f"{label:<34} {k:>8} {j:>8} {j / k:>6.1f} {c:>8} {c / k:>6.1f}")


if __name__ == "__main__":
    main()
