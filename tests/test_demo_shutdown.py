"""``python3 dev.py demo`` on embedded servers leaves no process behind, however it is stopped.

The demo runs as a user starts it: through dev.py, in a session of its own. The test signals
dev.py only (as a terminal's Ctrl-C or a service manager's SIGTERM would reach it), then checks
that no process of that session, and no server on the demo's work directory, survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from collector.embedded.broker import free_port
from collector.embedded.postgres import postmaster_pid

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(240)


def dev_demo(workdir: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "demo", "--no-live", "--devices", "1",
         "--interval", "0.5", "--no-billing", "--api-port", str(port), "--workdir",
         str(workdir), *extra],
        env=clean, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def wait_until(pred: Callable[[], bool], proc: subprocess.Popen[str], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if pred():
                return True
        except (httpx.HTTPError, ValueError, KeyError, IndexError, OSError):
            pass
        time.sleep(0.3)
    return False


def reporting(port: int) -> bool:
    r = httpx.get(f"http://127.0.0.1:{port}/devices", timeout=2)
    return any(d["readings"] > 0 for d in r.json())


def session_processes(sid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return out


def processes_naming(path: Path) -> list[psutil.Process]:
    """Live processes whose command line names ``path`` (the demo's servers do)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in a for a in p.info["cmdline"] or []) and (
                p.status() != psutil.STATUS_ZOMBIE
            ):
                out.append(p)
        except psutil.Error:
            continue
    return out


def gone(procs: list[psutil.Process], timeout_s: float = 10) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def pid_gone(pid: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def finish(proc: subprocess.Popen[str], timeout_s: float = 90) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_to_dev_py_stops_the_demo_in_order_and_leaves_no_process(
    tmp_path: Path, signum: signal.Signals
) -> None:
    workdir = (tmp_path / "demo").resolve()
    port = free_port()
    proc = dev_demo(workdir, port, "--duration", "150")
    try:
        ok = wait_until(lambda: reporting(port), proc, 150)
        pg_pid = postmaster_pid(workdir / "pg")
        children = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signum)  # dev.py only, as a terminal or a service manager does
        out = finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert ok, "no readings arrived"
    assert pg_pid is not None, "embedded PostgreSQL was not running"
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    for step in ("stopping agents", "stopping collector", "stopping MQTT broker",
                 "stopping PostgreSQL", "demo stopped"):
        assert step in out, (step, out)
    assert out.index("stopping collector") < out.index("stopping MQTT broker") < out.index(
        "stopping PostgreSQL")
    assert "listening at mqtt://127.0.0.1:" in out
    assert gone(children) == []
    assert gone(session_processes(proc.pid)) == []
    assert pid_gone(pg_pid), "embedded PostgreSQL still running"
    assert gone(processes_naming(workdir)) == []


def test_after_a_killed_run_the_next_run_stops_its_leftover_servers(tmp_path: Path) -> None:
    """SIGKILL of the demo leaves PostgreSQL and the broker running with stale pid records;
    the next run takes them over and stops them at its end; 'first run' only on the first."""
    workdir = (tmp_path / "demo").resolve()
    port = free_port()
    first = dev_demo(workdir, port, "--duration", "150")
    try:
        if not wait_until(lambda: reporting(port), first, 150):
            pytest.fail(f"no readings arrived: {finish(first, 30)}")
        demo_proc = next(p for p in psutil.Process(first.pid).children()
                         if "collector.demo" in " ".join(p.cmdline()))
        demo_proc.kill()  # no chance to stop anything: servers and pid records are left
        out1 = finish(first, 30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert "first run" in out1
    assert processes_naming(workdir), "expected the killed run to leave its servers behind"

    second = dev_demo(workdir, free_port(), "--duration", "8")
    out2 = finish(second, 150)
    assert second.returncode == 0, out2
    assert "first run" not in out2
    assert "Traceback" not in out2, out2
    assert gone(processes_naming(workdir)) == [], "a server of either run survived"
    assert postmaster_pid(workdir / "pg") is None


def test_a_broker_that_dies_is_started_again_and_readings_keep_arriving(tmp_path: Path) -> None:
    workdir = (tmp_path / "demo").resolve()
    port = free_port()
    proc = dev_demo(workdir, port, "--duration", "150")

    def count() -> int:
        r = httpx.get(f"http://127.0.0.1:{port}/devices", timeout=2)
        return sum(int(d["readings"]) for d in r.json())

    try:
        assert wait_until(lambda: count() > 0, proc, 150), "no readings arrived"
        broker_pid = int((workdir / "mqtt" / "broker.pid").read_text().split()[0])
        os.kill(broker_pid, signal.SIGKILL)
        assert pid_gone(broker_pid)
        before = count()
        restarted = wait_until(
            lambda: (workdir / "mqtt" / "broker.pid").exists()
            and int((workdir / "mqtt" / "broker.pid").read_text().split()[0]) != broker_pid
            and count() > before + 3, proc, 90)
        os.kill(proc.pid, signal.SIGTERM)
        out = finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert restarted, out
    assert "MQTT broker restarted, listening at mqtt://127.0.0.1:" in out
    assert proc.returncode == 0, out
    assert gone(processes_naming(workdir)) == []
