#!/usr/bin/env python3
"""Developer entry point: sets up .venv on first use, then runs the demo, the tests or a check.

    python3 dev.py demo        # everything on embedded defaults, no server to install
    python3 dev.py test        # the whole test suite (what .ci/run calls)
    python3 dev.py check       # ruff + mypy --strict
    python3 dev.py bench NAME  # a benchmark from bench/ (ingest, rating, close)

Only the Python standard library is used here, so it runs on a fresh Python 3.11+.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".tally-installed"


def ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Tally needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing Tally and its dev dependencies into .venv", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.check_call([*pip, "install", "--upgrade", "pip"])
    subprocess.check_call([*pip, "install", "-e", f"{ROOT}[dev]"])
    STAMP.write_text(digest)


def run(argv: list[str], *, own_group: bool = False) -> int:
    """Run ``argv`` and wait for it, whatever signals arrive meanwhile.

    SIGINT and SIGTERM sent to dev.py are passed on to the child, and dev.py keeps waiting
    until the child has finished its own orderly shutdown (it never kills it halfway). With
    ``own_group`` the child gets a process group of its own, so a Ctrl-C at the terminal
    reaches it exactly once (through dev.py) instead of also hitting the servers it started.
    """
    proc = subprocess.Popen(argv, cwd=ROOT, process_group=0 if own_group else None)

    def forward(signum: int, _frame: object) -> None:
        # without its own group the child got the terminal's Ctrl-C already
        if proc.poll() is None and (own_group or signum != signal.SIGINT):
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # pragma: no cover - handler installed above
                continue
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    cmd, rest = args[0], args[1:]
    ensure_env()
    py = str(BIN / "python")
    if cmd == "demo":
        return run([py, "-m", "collector.demo", *rest], own_group=True)
    if cmd == "test":
        return run([py, "-m", "pytest", *rest])
    if cmd == "check":
        rc = run([py, "-m", "ruff", "check", "."])
        return rc or run([py, "-m", "mypy"])
    if cmd == "bench":
        if not rest:
            print("usage: python3 dev.py bench NAME [ARGS]", file=sys.stderr)
            return 2
        return run([py, str(ROOT / "bench" / f"{rest[0]}.py"), *rest[1:]])
    print(f"unknown command {cmd!r}; try: demo, test, check, bench", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
