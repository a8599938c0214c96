"""Run the collector with ``tracemalloc`` snapshots, and compare snapshots (soak debugging).

    python bench/trace_memory.py run DIR EVERY_S NFRAMES -- <collector arguments>
    python3 dev.py bench trace_memory compare DIR [--top 25]

``run`` starts a daemon thread that starts tracing after ``EVERY_S`` seconds (past the
imports) and dumps ``DIR/snap-NNNN.pickle`` every ``EVERY_S`` seconds from then on, then runs
``python -m collector`` with the given arguments in this process (used by ``bench/soak.py
--tracemalloc DIR``; production code is not touched). ``compare`` prints, for the first
snapshot after a warm-up (the second one) against the last, the traced total and the lines
whose live allocations grew the most, with their growth per 10 minutes, so a structure that
grows without bound stands out from ones that only fill up once.
"""

from __future__ import annotations

import argparse
import pickle
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path


def _dump_every(directory: Path, every_s: float, nframes: int) -> None:
    time.sleep(every_s)  # start after the imports: tracing them would only slow the start
    tracemalloc.start(nframes)
    n = 0
    while True:
        time.sleep(every_s)
        snap = tracemalloc.take_snapshot()
        path = directory / f"snap-{n:04d}.pickle"
        with path.open("wb") as f:
            pickle.dump((time.time(), snap), f)
        n += 1


def run(directory: Path, every_s: float, nframes: int, argv: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(here)]
    threading.Thread(target=_dump_every, args=(directory, every_s, nframes), daemon=True,
                     name="tracemalloc-dump").start()
    sys.argv = ["collector", *argv]
    runpy.run_module("collector", run_name="__main__", alter_sys=True)


def compare(directory: Path, top: int) -> None:
    paths = sorted(directory.glob("snap-*.pickle"))
    if len(paths) < 3:
        raise SystemExit(f"need at least 3 snapshots in {directory}, found {len(paths)}")
    loaded = []
    own = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__))
    for p in (paths[1], paths[len(paths) // 2], paths[-1]):
        with p.open("rb") as f:
            t, snap = pickle.load(f)
        loaded.append((t, snap.filter_traces(own)))
    (t_a, a), (t_m, m), (t_b, b) = loaded
    per10 = 600.0 / (t_b - t_a)
    mb = 1e6
    print(f"snapshots {paths[1].name} → {paths[-1].name}: {(t_b - t_a) / 60:.1f} min")
    for label, (t, s) in (("first", (t_a, a)), ("middle", (t_m, m)), ("last", (t_b, b))):
        total = sum(st.size for st in s.statistics("filename"))
        print(f"  traced Python memory at {label:>6}: {total / mb:8.2f} MB"
              f" ({(t - t_a) / 60:5.1f} min)")
    print(f"top {top} growth by line (first → last), MB and MB per 10 min, then blocks:")
    for st in b.compare_to(a, "lineno")[:top]:
        frame = st.traceback[0]
        print(f"  {st.size_diff / mb:+8.3f} MB ({st.size_diff / mb * per10:+7.3f}/10 min)"
              f" {st.count_diff:+8d} blocks  now {st.size / mb:7.2f} MB"
              f"  {frame.filename}:{frame.lineno}")
    print(f"top {min(top, 10)} growth by traceback:")
    for st in b.compare_to(a, "traceback")[:min(top, 10)]:
        print(f"  {st.size_diff / mb:+8.3f} MB {st.count_diff:+8d} blocks")
        for line in st.traceback.format()[-6:]:
            print(f"      {line}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sep = sys.argv.index("--")
        directory, every, nframes = sys.argv[2:sep]
        run(Path(directory), float(every), int(nframes), sys.argv[sep + 1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("directory", type=Path)
    cmp_.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    compare(args.directory, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
