"""Benchmark of the usage core: billing-close derivation of many series × a month of 15-min data.

Run: .venv/bin/python bench/usage_bench.py [--series 10000] [--days 31] [--glitches 0.0005]
                                           [--baseline-series 200]

Times ``derive_many`` (readings → 15-minute buckets, with glitch removal, gap estimation and
flags) on every series, with a sanity check that the derived total equals Σ(last − first) of
the monotone counters.

Baseline (same run): the straightforward per-reading pure-Python loop a first attempt would
write: for each series, walk its readings in time order, take the increase between consecutive
readings (a decrease is a counter reset: the increase is the new value) and spread it pro rata
over the 15-minute buckets the interval overlaps. It does less than the core (no glitch or
jitter handling, no gap estimation, no flags, coverage or reading counts), so the ratio
understates the core's advantage. It runs on a sample of the *clean* series (no glitch, no
dropped reading, no outage), where both must give the same buckets; the check compares them
bucket by bucket. The reading lists are prepared before the clock starts.

The final ``RESULT`` line: figure = derive_many readings/s (all series), baseline = the loop's
readings/s (sample), ratio = figure / baseline.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from collector.usage import MeterConfig, SeriesBatch, bucket_edges, derive_many

T0 = 1_772_323_200.0  # 2026-03-01T00:00:00Z
STEP = 900.0


def naive_buckets(ts: list[float], values: list[float], e0: float, nb: int) -> list[float]:
    """Usage per 15-minute bucket of one cumulative series, one reading at a time."""
    out = [0.0] * nb
    for i in range(1, len(ts)):
        t0, t1 = ts[i - 1], ts[i]
        inc = values[i] - values[i - 1]
        if inc < 0:  # the counter restarted at 0
            inc = values[i]
        dur = t1 - t0
        if dur <= 0:
            continue
        b = int((t0 - e0) // STEP)
        t = t0
        while t < t1 and b < nb:
            end = min(t1, e0 + (b + 1) * STEP)
            if b >= 0:
                out[b] += inc * (end - t) / dur
            t = end
            b += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--glitches", type=float, default=0.0005, help="share of readings set to 0")
    ap.add_argument("--chunk", type=int, default=65_536, help="readings per derivation group")
    ap.add_argument("--gaps", type=float, default=0.0005, help="share of readings dropped")
    ap.add_argument("--outages", type=int, default=100,
                    help="series with a 6-hour outage (a long gap: profile estimate)")
    ap.add_argument("--baseline-series", type=int, default=200,
                    help="clean series the pure-Python baseline derives")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    per = args.days * 96 + 1
    n = args.series * per
    ts = np.tile(T0 + np.arange(per) * STEP, args.series)
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
    clean = np.nonzero(
        keep.reshape(args.series, per).all(axis=1) & ~glitch.reshape(args.series, per).any(axis=1)
    )[0]
    ts, values = ts[keep], values[keep]
    counts = keep.reshape(args.series, per).sum(axis=1)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    batch = SeriesBatch(
        offsets, ts, values, ["cumulative"] * args.series, [MeterConfig()] * args.series
    )
    edges = bucket_edges(T0, T0 + args.days * 86400, "15m")
    nb = edges.shape[0] - 1
    t, c, os0 = time.perf_counter(), time.process_time(), os.times()
    m = derive_many(batch, edges, chunk_readings=args.chunk)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    os1 = os.times()
    core_rate = ts.shape[0] / dt
    print(f"series={args.series} readings={ts.shape[0]:,} buckets={nb} "
          f"glitches={int(glitch.sum())} gaps={int((~keep).sum())} clean series={clean.size}")
    print(f"derive_many: {dt:.2f} s wall = {core_rate / 1e6:.2f} M readings/s; "
          f"{dc:.2f} s CPU = {ts.shape[0] / dc / 1e6:.2f} M readings/s per core "
          f"(user {os1.user - os0.user:.2f} s, system {os1.system - os0.system:.2f} s: mostly "
          "first-touch page faults of the output matrices)")
    total_ok = bool(np.isclose(m.quantity.sum(), truth, rtol=1e-9))
    print(f"total={m.quantity.sum():.3f} expected={truth:.3f} ok={total_ok}")

    if clean.size == 0:
        raise SystemExit("no clean series to run the baseline on (lower --gaps/--glitches)")
    sample = clean[np.linspace(0, clean.size - 1, min(args.baseline_series, clean.size))
                   .astype(np.int64)]
    lists = [(ts[offsets[s]:offsets[s + 1]].tolist(), values[offsets[s]:offsets[s + 1]].tolist())
             for s in sample.tolist()]
    sample_readings = sum(len(x) for x, _ in lists)
    e0 = float(edges[0])
    t = time.perf_counter()
    naive = [naive_buckets(x, v, e0, nb) for x, v in lists]
    base_dt = time.perf_counter() - t
    base_rate = sample_readings / base_dt
    got = np.asarray(naive)
    want = m.quantity[sample]
    same = bool(np.allclose(got, want, rtol=1e-9, atol=1e-9))
    print(f"baseline (pure-Python loop): {sample.size} clean series, {sample_readings:,} readings"
          f" in {base_dt:.2f} s = {base_rate:,.0f} readings/s")
    print(f"check: baseline buckets == derive_many buckets on the sample: {same} "
          f"(max |diff| {float(np.abs(got - want).max()):.2e})")
    print(f"RESULT name=usage_core figure={core_rate:.0f} readings/s baseline={base_rate:.0f}"
          f" readings/s ratio={core_rate / base_rate:.1f}x")
    if not (same and total_ok):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
