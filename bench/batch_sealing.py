"""Cost of sealing a batch: buffered rows grouped into the columnar series of a batch.

    python3 dev.py bench batch_sealing [--sizes 1000 10000] [--series 10] [--repeat 200]

Rows as ``SqliteBuffer`` hands them to ``agent.batching.series_from_rows`` (row id, series id,
timestamp, value; ``--series`` meters interleaved, rows in id order as the buffer reads them).
Figure: the plain-Python grouping the agent uses, series built. Baseline (same run, same rows):
the numpy grouping it used before (``tests/agent/numpy_batching.py``), up to the sliced arrays
(the series it then built held those slices: a few µs more). Median of ``--repeat`` calls each.
One ``RESULT`` line per size: figure = plain-Python µs per batch, baseline = numpy µs per
batch, ratio = figure / baseline.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.batching import Row, SeriesKey, series_from_rows  # noqa: E402
from tests.agent.numpy_batching import numpy_groups, numpy_series_from_rows  # noqa: E402

Grouping = Callable[[Sequence[Row], Mapping[int, SeriesKey]], Sequence[object]]


def rows_for(n: int, series: int, rng: random.Random) -> tuple[list[Row], dict[int, SeriesKey]]:
    keys = {10 + i: (f"ch{i}", "energy_import", "kWh", "cumulative") for i in range(series)}
    sids = sorted(keys, key=lambda _: rng.random())  # series ids not in key order
    t0 = 1_764_547_200_000
    rows = [(1_000_000 + i, sids[i % series], t0 + (i // series) * 1000, 1234.5 + i * 0.01)
            for i in range(n)]
    return rows, keys


def median_us(fn: Grouping, rows: list[Row], keys: dict[int, SeriesKey], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(rows, keys)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--series", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    rng = random.Random(13)
    print(f"load average before: {os.getloadavg()}")
    for n in args.sizes:
        rows, keys = rows_for(n, args.series, rng)
        assert series_from_rows(rows, keys) == numpy_series_from_rows(rows, keys)
        new = median_us(series_from_rows, rows, keys, args.repeat)
        old = median_us(numpy_groups, rows, keys, args.repeat)
        print(f"{n:>7,} readings in {args.series} series: plain Python {new:,.0f} µs "
              f"({new * 1000 / n:.0f} ns/reading), numpy {old:,.0f} µs "
              f"({old * 1000 / n:.0f} ns/reading)")
        print(f"RESULT name=batch_sealing size={n} figure={new:.0f}us baseline={old:.0f}us "
              f"ratio={new / old:.2f}x")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
