"""Benchmark of the usage core: billing-close derivation of many series × a month of 15-min data.

Run: .venv/bin/python -m bench.usage_bench [--series 10000] [--days 31] [--glitches 0.0005]
Prints readings/s of derive_many (readings → 15-minute buckets), with a sanity check that the
derived total equals Σ(last − first) of the monotone counters.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from collector.usage import MeterConfig, SeriesBatch, bucket_edges, derive_many

T0 = 1_772_323_200.0  # 2026-03-01T00:00:00Z


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--glitches", type=float, default=0.0005, help="share of readings set to 0")
    ap.add_argument("--chunk", type=int, default=65_536, help="readings per derivation group")
    ap.add_argument("--gaps", type=float, default=0.0005, help="share of readings dropped")
    ap.add_argument("--outages", type=int, default=100,
                    help="series with a 6-hour outage (a long gap: profile estimate)")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    per = args.days * 96 + 1
    n = args.series * per
    ts = np.tile(T0 + np.arange(per) * 900.0, args.series)
    inc = rng.random(n) * 0.5
    inc[::per] = 0.0
    values = (inc.reshape(args.series, per).cumsum(axis=1) + 1000.0).ravel()
    truth = float((values.reshape(args.series, per)[:, -1] - 1000.0).sum())
    interior = np.ones(n, dtype=bool)
    interior[::per] = False
    interior[per - 1 :: per] = False
    keep = ~(interior & (rng.random(n) < args.gaps))
    for s in rng.choice(args.series, size=min(args.outages, args.series), replace=False):
        at = s * per + per // 2
        keep[at : at + 24] = False  # 24 quarter hours missing mid-month
    glitch = interior & keep & (rng.random(n) < args.glitches)
    values[glitch] = 0.0
    ts, values = ts[keep], values[keep]
    counts = keep.reshape(args.series, per).sum(axis=1)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    batch = SeriesBatch(
        offsets, ts, values, ["cumulative"] * args.series, [MeterConfig()] * args.series
    )
    edges = bucket_edges(T0, T0 + args.days * 86400, "15m")
    t, c = time.perf_counter(), time.process_time()
    m = derive_many(batch, edges, chunk_readings=args.chunk)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    print(f"series={args.series} readings={ts.shape[0]:,} buckets={edges.shape[0] - 1} "
          f"glitches={int(glitch.sum())} gaps={int((~keep).sum())}")
    print(f"derive_many: {dt:.2f} s wall = {ts.shape[0] / dt / 1e6:.2f} M readings/s; "
          f"{dc:.2f} s CPU = {ts.shape[0] / dc / 1e6:.2f} M readings/s per core")
    print(f"total={m.quantity.sum():.3f} expected={truth:.3f} "
          f"ok={np.isclose(m.quantity.sum(), truth, rtol=1e-9)}")


if __name__ == "__main__":
    main()
