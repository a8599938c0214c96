"""Status documents: what the collector reads (state, buffer_depth) and the offline forms."""

from __future__ import annotations

import json
from pathlib import Path

from agent.buffer_port import BufferStats
from agent.status import Health, offline_status, online_status

STATS = BufferStats(depth=1200, unbatched=200, pending_batches=1, oldest_ts_ms=5, dropped=3,
                    refused=0, used_bytes=4096, next_seq=42)


def test_online_status_carries_buffer_figures() -> None:
    """The online document has state, top-level buffer_depth and the buffer details."""
    health = Health(source_errors=2)
    health.error("meter m1 timed out", 99)
    doc = json.loads(online_status(device="d", version="1", now_ms=7, stats=STATS, health=health))
    assert (doc["state"], doc["buffer_depth"], doc["ts"]) == ("online", 1200, 7)
    assert doc["buffer"]["dropped"] == 3
    assert doc["buffer"]["oldest_ts"] == 5
    assert (doc["source_errors"], doc["last_error"], doc["last_error_ts"]) == (
        2, "meter m1 timed out", 99)


def test_online_status_without_stats() -> None:
    """If the buffer cannot be read the status still goes out, with null figures."""
    doc = json.loads(online_status(device="d", version="1", now_ms=7, stats=None,
                                   health=Health()))
    assert doc["buffer_depth"] is None
    assert doc["buffer"] is None


def test_last_will_has_no_timestamp_and_farewell_has_one() -> None:
    """The will is built before the fact (no ts); the shutdown farewell is stamped."""
    will = json.loads(offline_status(device="d", version="1", reason="connection lost",
                                     now_ms=None))
    bye = json.loads(offline_status(device="d", version="1", reason="shutdown", now_ms=9))
    assert will == {"state": "offline", "device": "d", "agent": "1", "reason": "connection lost"}
    assert bye["ts"] == 9
    assert bye["reason"] == "shutdown"


def test_farewell_carries_the_final_counters() -> None:
    """A clean shutdown's farewell repeats the buffer and reconciliation figures."""
    bye = json.loads(offline_status(device="d", version="1", reason="shutdown", now_ms=9,
                                    stats=STATS, health=Health()))
    online = json.loads(online_status(device="d", version="1", now_ms=9, stats=STATS,
                                      health=Health()))
    assert bye["reconciliation"] == online["reconciliation"]
    assert bye["buffer"] == online["buffer"]


def test_long_errors_are_truncated() -> None:
    """A huge error text cannot bloat the status message."""
    health = Health()
    health.error("x" * 10_000, 1)
    assert health.last_error is not None
    assert len(health.last_error) == 300


async def test_status_carries_reconciliation_counters(tmp_path: Path) -> None:
    """Readings taken per meter, the first and last sealed seq and the policy's drops are in the
    status, for a tool that reconciles the device with the collector."""
    from agent.buffer import SqliteBuffer  # noqa: PLC0415
    from agent.buffer_port import BufferLimits, FullPolicy  # noqa: PLC0415
    from agent.protocol import Kind, Reading  # noqa: PLC0415

    t0 = 1_764_000_000_000
    buf = await SqliteBuffer.open(tmp_path / "b.db", device_id="d", now_ms=t0,
                                  limits=BufferLimits(max_readings=8,
                                                      policy=FullPolicy.DROP_OLDEST))
    await buf.append([Reading("a", "x", "1", Kind.GAUGE, t0 + i, i) for i in range(5)])
    await buf.append([Reading("b", "x", "1", Kind.GAUGE, t0 + i, i) for i in range(3)])
    await buf.seal(4, t0, max_batches=2)
    await buf.append([Reading("a", "x", "1", Kind.GAUGE, t0 + 9, 9)])
    doc = json.loads(online_status(device="d", version="t", now_ms=t0, stats=await buf.stats(),
                                   health=Health()))
    await buf.close()
    rec = doc["reconciliation"]
    assert rec["taken"] == {"a": 6, "b": 3}
    assert rec["first_seq"] == t0 * 1000
    assert rec["last_seq_sealed"] == t0 * 1000 + 1
    assert (rec["dropped"], rec["dropped_batches"], rec["refused"], rec["lost"]) == (4, 1, 0, 0)
