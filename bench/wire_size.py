"""Bytes per reading on the wire: batched JSON and CBOR vs one JSON message per reading.

    python bench/wire_size.py [--readings 1000] [--interval-s 10] [--device gw-0001]

Builds batches the way the agent does: the simulated energy (kWh, 3 decimals), water (m³,
4 decimals) and data (GB, 6 decimals) meters polled every ``interval-s`` seconds, readings split
evenly over the 3 series, then encodes each batch with ``agent.protocol.encode_batch``.

Baseline (same readings, same run): the obvious first attempt, one MQTT message per reading with
a row-wise JSON envelope ``{"device":…,"meter":…,"metric":…,"unit":…,"kind":…,"ts":…,
"value":…}`` (compact separators, ``ts`` in Unix ms, so the baseline is not padded). Sizes are
payload bytes, and payload + MQTT 3.1.1 PUBLISH framing at QoS 1 (fixed header, topic,
packet id), since per-reading messages pay that framing once per reading.

The final ``RESULT`` line: figure = CBOR bytes/reading of the full-size batch, baseline = the
per-reading JSON message, ratio = baseline / figure (how many times smaller).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta

from agent.buffer_fake import MemoryBuffer
from agent.protocol import (
    Batch,
    Encoding,
    Reading,
    encode_batch,
    readings_topic,
    series_from_readings,
)
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


def mqtt_publish_size(topic: str, payload_len: int) -> int:
    """Bytes of an MQTT 3.1.1 PUBLISH packet at QoS 1 carrying ``payload_len`` bytes."""
    remaining = 2 + len(topic.encode()) + 2 + payload_len  # topic length + topic + packet id
    length_bytes = 1
    while remaining >= 128 ** length_bytes:
        length_bytes += 1
    return 1 + length_bytes + remaining


def per_reading_json(device: str, r: Reading) -> bytes:
    """The naive row-wise message of one reading."""
    doc = {"device": device, "meter": r.meter, "metric": r.metric, "unit": r.unit,
           "kind": r.kind.value, "ts": r.ts_ms, "value": r.value}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=1000, help="readings in the large batch")
    ap.add_argument("--interval-s", type=float, default=10.0, help="poll interval")
    ap.add_argument("--device", default="gw-0001")
    args = ap.parse_args()
    topic = readings_topic(args.device)
    print(f"{'batch':<34} {'readings':>8} {'JSON B':>8} {'B/rdg':>6} {'CBOR B':>8} {'B/rdg':>6}"
          f" {'+MQTT':>6}")
    results: list[tuple[float, float]] = []
    naive_payload = naive_wire = 0.0
    for n, label in ((args.readings, f"{args.readings} readings, 3 series"),
                     (99, "99 readings, 3 series"), (3, "3 readings (one poll)")):
        rs = asyncio.run(readings(n, args.interval_s))
        batch = Batch(args.device, 1_795_000_000_000_000, 1_795_000_000_000, "0.1.0",
                      series_from_readings(rs))
        j = len(encode_batch(batch, Encoding.JSON))
        c = len(encode_batch(batch, Encoding.CBOR))
        k = batch.reading_count
        wire_c = mqtt_publish_size(topic, c) / k
        print(f"{label:<34} {k:>8} {j:>8} {j / k:>6.1f} {c:>8} {c / k:>6.1f} {wire_c:>6.1f}")
        results.append((c / k, wire_c))
        if n == args.readings:
            msgs = [per_reading_json(args.device, r) for r in rs]
            naive_payload = sum(len(m) for m in msgs) / len(msgs)
            naive_wire = sum(mqtt_publish_size(topic, len(m)) for m in msgs) / len(msgs)
            print(f"{'naive: 1 JSON message per reading':<34} {len(msgs):>8} "
                  f"{sum(len(m) for m in msgs):>8} {naive_payload:>6.1f} {'-':>8} {'-':>6} "
                  f"{naive_wire:>6.1f}")
    cbor, cbor_wire = results[0]
    print(f"payload: naive/CBOR {naive_payload / cbor:.1f}x; with MQTT framing (topic {topic}):"
          f" {naive_wire / cbor_wire:.1f}x")
    print(f"RESULT name=wire_size figure={cbor:.1f} B/reading baseline={naive_payload:.1f}"
          f" B/reading ratio={naive_payload / cbor:.1f}x")


if __name__ == "__main__":
    main()
