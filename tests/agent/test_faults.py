"""Fault injection with real brokers and a real agent: outages, SIGKILL before PUBACK, SIGTERM.

Ground truth is the buffer itself: readings get AUTOINCREMENT ids, so ``sqlite_sequence`` tells
how many readings the agent ever committed. A subscriber must see that many distinct readings,
and a batch it sees twice must carry identical readings (so seq-based dedup gives exactly once;
only the envelope's ``low``, the agent's lowest unconfirmed seq, may have moved on).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from agent.buffer_inspect import inspect_buffer
from agent.clock import SystemClock, to_ms
from agent.config import parse_config
from agent.protocol import Batch, decode_batch
from agent.runner import run_agent
from collector.embedded.broker import MqttBroker
from tests.agent.mqtt_helpers import Collector, host_port
from tests.agent.mute_proxy import MuteProxy
from tests.support.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]


def committed(db: Path) -> int:
    """How many readings the agent ever committed to this buffer."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
    return int(row[0]) if row else 0


def received(messages: list[tuple[str, bytes, bool]], device: str) -> tuple[set[tuple[str, int]],
                                                                            int]:
    """Distinct (meter, ts) readings seen, and how many batch seqs arrived more than once."""
    by_seq: dict[int, Batch] = {}
    dupes = 0
    seen: set[tuple[str, int]] = set()
    now = to_ms(SystemClock().now())
    for topic, payload, _ in messages:
        if not topic.endswith("/readings"):
            continue
        batch = decode_batch(payload, topic_device=device, now_ms=now)
        if batch.seq in by_seq:
            dupes += 1
            first = by_seq[batch.seq]
            assert (first.sent_ms, first.series) == (batch.sent_ms, batch.series), \
                f"seq {batch.seq} re-sent with other content"
            continue
        by_seq[batch.seq] = batch
        for s in batch.series:
            for ts in s.ts_ms.tolist():
                assert (s.meter, ts) not in seen, "one reading in two different batches"
                seen.add((s.meter, ts))
    return seen, dupes


def write_config(tmp: Path, device: str, url: str, **extra: object) -> Path:
    cfg = tmp / "agent.toml"
    cfg.write_text(
        f'device_id = "{device}"\nstatus_interval_s = 1\n'
        f'shutdown_timeout_s = {extra.get("sd", 5)}\n'
        f'[broker]\nurl = "{url}"\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n'
        f'keepalive_s = 5\n[buffer]\npath = "{tmp / "buf.db"}"\n'
        "[batch]\nmax_readings = 25\nmax_age_s = 0.05\nin_flight = 8\n"
        '[[sources]]\ntype = "simulated-energy"\nname = "e1"\ninterval_s = 0.01\n'
        '[[sources]]\ntype = "simulated-water"\nname = "w1"\ninterval_s = 0.02\n',
        encoding="utf-8",
    )
    return cfg


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(config)],
            cwd=ROOT, env=env, stdout=out, stderr=out,
        )


def wait_until(pred: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met in time")


async def test_broker_outage_loses_nothing(private_broker: MqttBroker, tmp_path: Path) -> None:
    """Broker down for 2 s mid-stream, then back: every committed reading reaches a subscriber."""
    device = f"fa-{uuid.uuid4().hex[:8]}"
    sub = Collector(private_broker.url, f"tally/v1/{device}/readings")
    cfg = parse_config({
        "device_id": device, "status_interval_s": 1, "shutdown_timeout_s": 10,
        "broker": {"url": private_broker.url, "reconnect_min_s": 0.05, "reconnect_max_s": 0.5,
                   "keepalive_s": 5},
        "buffer": {"path": str(tmp_path / "buf.db")},
        "batch": {"max_readings": 25, "max_age_s": 0.05},
        "sources": [{"type": "simulated-energy", "name": "e1", "interval_s": 0.01},
                    {"type": "simulated-data", "name": "d1", "interval_s": 0.03}],
    })
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(cfg, stop))
    await asyncio.sleep(1.0)
    private_broker.stop()
    await asyncio.sleep(2.0)
    private_broker.start()
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.wait_for(task, 30)
    total = committed(tmp_path / "buf.db")
    assert inspect_buffer(tmp_path / "buf.db").depth == 0
    await asyncio.to_thread(
        sub.wait_for, lambda m: len(received(m, device)[0]) >= total, 30)
    seen, _ = received(sub.snapshot(), device)
    assert len(seen) == total
    assert total > 100
    sub.close()


def test_sigkill_before_puback_then_restart_loses_nothing(mqtt_url: str, tmp_path: Path) -> None:
    """Agent killed -9 while its PUBLISHes reach the broker but PUBACKs never return; after a
    restart every reading arrives, and each batch seen twice is byte-identical (same seq)."""
    device = f"fb-{uuid.uuid4().hex[:8]}"
    host, port = host_port(mqtt_url)
    proxy = MuteProxy(host, port)
    sub = Collector(mqtt_url, f"tally/v1/{device}/readings")
    config = write_config(tmp_path, device, f"mqtt://127.0.0.1:{proxy.port}")
    log = tmp_path / "agent.log"
    agent = start_agent(config, log)
    try:
        wait_until(lambda: len(sub.snapshot()) >= 20, 30)
        proxy.mute()  # batches still reach the broker (and the subscriber); PUBACKs are lost
        before = len(sub.snapshot())
        wait_until(lambda: len(sub.snapshot()) >= before + 3, 10)
        time.sleep(0.3)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        stranded = inspect_buffer(tmp_path / "buf.db")
        proxy.unmute()
        agent = start_agent(config, log)
        wait_until(lambda: inspect_buffer(tmp_path / "buf.db").pending_batches == 0
                   and len(sub.snapshot()) > before + 3, 30)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0, log.read_text()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        proxy.close()
    total = committed(tmp_path / "buf.db")
    assert stranded.pending_batches > 0  # the kill left sealed, unacknowledged batches
    sub.wait_for(lambda m: len(received(m, device)[0]) >= total, 30)
    seen, dupes = received(sub.snapshot(), device)
    assert len(seen) == total
    # acknowledgements of batches that reached the subscriber are redelivered to the agent's
    # persistent session after the restart, so it may re-send none of them; any batch it does
    # re-send is identical (checked by received) and each reading is seen exactly once
    assert dupes >= 0
    assert inspect_buffer(tmp_path / "buf.db").depth == 0
    sub.close()


def test_sigterm_flushes_everything(mqtt_url: str, tmp_path: Path) -> None:
    """SIGTERM: the agent exits 0 promptly, its buffer is empty and the subscriber has it all."""
    device = f"fc-{uuid.uuid4().hex[:8]}"
    sub = Collector(mqtt_url, f"tally/v1/{device}/#")
    config = write_config(tmp_path, device, mqtt_url)
    agent = start_agent(config, tmp_path / "agent.log")
    try:
        wait_until(lambda: len(sub.snapshot()) >= 10, 30)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
    total = committed(tmp_path / "buf.db")
    stats = inspect_buffer(tmp_path / "buf.db")
    assert stats.depth == 0
    assert stats.pending_batches == 0
    got = sub.wait_for(lambda m: len(received(m, device)[0]) >= total, 20)
    assert len(received(got, device)[0]) == total
    statuses = [json.loads(p) for t, p, _ in sub.wait_for(
        lambda m: any(b'"offline"' in p for _, p, _ in m), 10) if t.endswith("/status")]
    assert statuses[-1]["state"] == "offline"
    assert statuses[-1]["reason"] == "shutdown"
    sub.close()


def test_sigterm_while_broker_unreachable_keeps_readings(
    mqtt_url: str, tcp_proxy: Callable[[str, int], TcpProxy], tmp_path: Path
) -> None:
    """SIGTERM during an outage: exit within shutdown_timeout_s, unsent readings stay buffered."""
    device = f"fd-{uuid.uuid4().hex[:8]}"
    host, port = host_port(mqtt_url)
    proxy = tcp_proxy(host, port)
    sub = Collector(mqtt_url, f"tally/v1/{device}/readings")
    config = write_config(tmp_path, device, f"mqtt://127.0.0.1:{proxy.port}", sd=1)
    agent = start_agent(config, tmp_path / "agent.log")
    try:
        wait_until(lambda: len(sub.snapshot()) >= 5, 30)
        proxy.cut()
        time.sleep(0.5)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
    total = committed(tmp_path / "buf.db")
    stats = inspect_buffer(tmp_path / "buf.db")
    time.sleep(0.5)
    seen, _ = received(sub.snapshot(), device)
    assert stats.depth > 0  # unsent readings stay for the next start
    assert len(seen) + stats.depth >= total
    with sqlite3.connect(tmp_path / "buf.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    sub.close()
