"""The agent's disk, honestly: a bounded WAL counted in max_bytes, drop_oldest on sealed batches,
backoff when deletes fail, and SIGTERM on a full disk that counts what it could not store.

Full disks are real: a 1 MiB tmpfs mounted for the test (the tests run as root here and in CI;
without ``mount`` they fail, they are not skipped). No SQLite page limit, no RLIMIT emulation.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from agent.buffer import SqliteBuffer, wal_budget
from agent.buffer_fake import MemoryBuffer
from agent.buffer_inspect import inspect_buffer
from agent.buffer_port import BufferLimits, FullPolicy
from agent.clock import FakeClock, SystemClock, to_ms
from agent.errors import DiskFullError
from agent.protocol import Kind, Reading, decode_batch
from agent.publisher_fake import FakePublisher
from agent.runner import Agent
from collector.embedded.broker import MqttBroker
from tests.agent.mqtt_helpers import Collector
from tests.agent.test_confirm import cfg, readings, sent_seqs
from tests.agent.test_faults import start_agent, wait_until
from tests.agent.test_runner import START

T0 = to_ms(START)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of this test's own."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk tests: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def many(n: int, start: int) -> list[Reading]:
    return [Reading("m", "x", "1", Kind.GAUGE, T0 + start + i, float(i)) for i in range(n)]


async def test_wal_stays_within_its_budget_and_counts_in_used_bytes(tmp_path: Path) -> None:
    """Under a steady stream of appends the WAL is checkpointed near its budget, and the used
    size reported (and bounded by max_bytes) includes it."""
    limit = 512 * 1024
    buf = await SqliteBuffer.open(tmp_path / "buf.db", device_id="d", now_ms=T0,
                                  limits=BufferLimits(max_bytes=limit,
                                                      policy=FullPolicy.DROP_OLDEST))
    wal = tmp_path / "buf.db-wal"
    largest = 0
    for i in range(150):
        await buf.append(many(100, i * 100))
        if i % 3 == 0:
            await buf.seal(100, T0, max_batches=3)
        largest = max(largest, wal.stat().st_size)
        stats = await buf.stats()
        assert stats.used_bytes >= wal.stat().st_size
    assert largest <= 2 * wal_budget(limit) + 64 * 1024
    assert stats.used_bytes <= limit * 1.3
    assert stats.dropped > 0
    await buf.close()


class FailingDeletes(MemoryBuffer):
    """A buffer whose deletes fail (as on a full disk) until ``heal``."""

    def __init__(self) -> None:
        super().__init__(now_ms=T0)
        self.attempts = 0
        self.failing = True

    async def ack(self, seqs: Sequence[int]) -> None:
        self.attempts += 1
        if self.failing:
            raise DiskFullError("disk full")
        await super().ack(seqs)


async def test_failing_deletes_back_off_and_nothing_is_resent() -> None:
    """A confirmed batch whose delete fails is retried with backoff, never sent again."""
    buf, pub = FailingDeletes(), FakePublisher()
    await buf.append(readings(10))
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[], clock=FakeClock(START))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(2.0)
    assert len(sent_seqs(pub)) == 1
    assert 2 <= buf.attempts <= 12  # pauses of up to 0.1, 0.2, 0.4 … 2 s: not thousands
    assert agent.health.buffer_errors == buf.attempts
    buf.failing = False
    await asyncio.sleep(2.5)  # the pause between retries is capped at 2 s
    assert buf.pending() == []
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(sent_seqs(pub)) == 1


SIMULATED = "".join(f'[[sources]]\ntype = "simulated-energy"\nname = "e{i}"\n'
                    'interval_s = 0.002\n' for i in range(4))


def _file_sources(tmp: Path) -> str:
    """Meters read from a file: they keep no state in the buffer, so on a full disk every poll
    still yields a reading (a simulated meter that cannot save its register yields none)."""
    (tmp / "meter.txt").write_text("42.5\n", encoding="utf-8")
    return "".join(
        f'[[sources]]\ntype = "file"\nname = "f{i}"\ninterval_s = 0.002\n'
        f'path = "{tmp / "meter.txt"}"\nmetric = "power"\nunit = "kW"\nkind = "gauge"\n'
        for i in range(4))


def _config(tmp: Path, disk: Path, device: str, url: str, buffer: str, sd: float,
            sources: str = SIMULATED) -> Path:
    cfg_path = tmp / "agent.toml"
    cfg_path.write_text(
        f'device_id = "{device}"\nstatus_interval_s = 0.5\nshutdown_timeout_s = {sd}\n'
        f'[broker]\nurl = "{url}"\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n'
        f'[buffer]\npath = "{disk / "buf.db"}"\n{buffer}\n'
        "[batch]\nmax_readings = 200\nmax_age_s = 0.05\nin_flight = 4\nwindow = 8\n"
        + sources,
        encoding="utf-8",
    )
    return cfg_path


def _statuses(sub: Collector) -> list[dict[str, object]]:
    return [json.loads(p) for t, p, _ in sub.snapshot() if t.endswith("/status")]


def test_byte_bound_with_drop_oldest_keeps_a_small_disk_from_filling(
    private_broker: MqttBroker, small_disk: Path, tmp_path: Path,
) -> None:
    """No collector confirms anything: on a 1 MiB disk with max_bytes = 384 KiB the buffer
    (WAL included) stays under the bound by dropping the oldest sealed batches; the disk never
    fills, and the dropped batches are counted and held as skipped seqs to report."""
    device = f"dk-{uuid.uuid4().hex[:8]}"
    mqtt_url = private_broker.url  # no collector anywhere may confirm these batches
    sub = Collector(mqtt_url, f"tally/v1/{device}/status", confirm=False)
    config = _config(tmp_path, small_disk, device, mqtt_url,
                     'max_bytes = 393216\npolicy = "drop_oldest"', sd=2)
    log = tmp_path / "agent.log"
    agent = start_agent(config, log)
    try:
        wait_until(lambda: any((s.get("buffer") or {}).get("dropped_batches", 0)  # type: ignore[union-attr]
                               for s in _statuses(sub)), 60)
        time.sleep(2.0)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0, log.read_text()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        sub.close()
    text = log.read_text()
    assert "disk full" not in text, text
    stats = inspect_buffer(small_disk / "buf.db")
    assert stats.dropped > 0
    online = [s for s in _statuses(sub) if s["state"] == "online"]
    assert max(s["buffer"]["used_bytes"] for s in online) <= 393216 * 1.3  # type: ignore[index]
    assert all(s["disk_full"] is False for s in online)
    assert online[-1]["buffer"]["skipped_unreported"] > 0  # type: ignore[index]


def test_sigterm_on_a_full_disk_counts_lost_readings_and_keeps_the_timeout(
    private_broker: MqttBroker, small_disk: Path, tmp_path: Path,
) -> None:
    """With the disk full, SIGTERM ends the agent within shutdown_timeout_s (+ the farewell),
    and the readings held in memory that could not be stored are reported: in the farewell
    status (``lost``), in the log and as exit code 3. Nothing stored is lost."""
    device = f"df-{uuid.uuid4().hex[:8]}"
    mqtt_url = private_broker.url
    sub = Collector(mqtt_url, f"tally/v1/{device}/status", confirm=False)
    config = _config(tmp_path, small_disk, device, mqtt_url, "max_bytes = 67108864", sd=2,
                     sources=_file_sources(tmp_path))
    log = tmp_path / "agent.log"
    agent = start_agent(config, log)
    try:
        wait_until(lambda: any(s.get("disk_full") for s in _statuses(sub)), 60)
        time.sleep(1.0)
        began = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(30)
        took = time.monotonic() - began
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
    text = log.read_text()
    assert code == 3, text
    assert took <= 2 + 3.0, f"shutdown took {took:.1f}s"
    assert "could not be stored" in text
    wait_until(lambda: any(s["state"] == "offline" for s in _statuses(sub)), 10)
    farewell = [s for s in _statuses(sub) if s["state"] == "offline"][-1]
    sub.close()
    assert int(farewell["lost"]) > 0  # type: ignore[call-overload]
    assert str(int(farewell["lost"])) in text  # type: ignore[call-overload]
    assert os.path.exists(small_disk / "buf.db")
    assert inspect_buffer(small_disk / "buf.db").depth > 0  # what was stored stays


class CountingFullDisk(MemoryBuffer):
    """Appends fail (disk full) while ``full``; counts the attempts."""

    def __init__(self) -> None:
        super().__init__(now_ms=T0)
        self.full = True
        self.attempts = 0

    async def append(self, readings: Sequence[Reading]) -> None:
        self.attempts += 1
        if self.full:
            raise DiskFullError("database or disk is full")
        await super().append(readings)


async def test_failing_appends_back_off_and_nothing_is_lost() -> None:
    """A poll every 10 ms does not hammer a full disk 100 times a second: appends back off
    (≤ 2 s apart); the readings wait in memory and are all stored once space returns."""
    from tests.agent.test_runner import Counter  # noqa: PLC0415

    buf, pub, src = CountingFullDisk(), FakePublisher(), Counter(interval_s=0.01)
    agent = Agent(cfg(), buffer=buf, publisher=pub, sources=[src], clock=SystemClock())
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(2.0)
    assert src.polls > 100
    assert buf.attempts <= 15
    buf.full = False
    await asyncio.sleep(2.5)
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0
    stored = sorted(int(v) for _, vs in [(0, s.values.tolist()) for t, p, _ in pub.messages
                    if t.endswith("/readings") for s in decode_batch(
                        p, topic_device="dev-r", now_ms=T0 + 10**12).series] for v in vs)
    assert stored == list(range(1, src.polls + 1))
