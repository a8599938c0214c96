"""ReadingStore against the real PostgreSQL: one transaction per flush, batch deduplication."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from agent.protocol import Batch, Kind, Series, encode_batch, readings_topic
from collector.errors import StorageUnavailable
from collector.ingest.decoders import decode_status
from collector.ingest.messages import (
    DEAD_LETTER_KEEP_BYTES,
    DeadLetter,
    DecodedBatch,
    FlushPlan,
    StatusUpdate,
)
from collector.storage.database import Pool, open_pool
from collector.storage.ingest_store import ReadingStore
from collector.storage.migrate import migrate
from tests.collector.ingest.synthetic import count, make_batch
from tests.support.proxy import TcpProxy


def _decoded(batch: Batch, received_ms: int = 1_764_000_100_000) -> DecodedBatch:
    return DecodedBatch(batch, readings_topic(batch.device), encode_batch(batch), received_ms)


def _plan(*batches: Batch) -> FlushPlan:
    return FlushPlan(batches=tuple(_decoded(b) for b in batches))


def test_copy_round_trip_keeps_exact_values_and_times(store: ReadingStore, pg_url: str) -> None:
    """Readings come back with the exact float values and millisecond timestamps."""
    ts = np.array([946_684_800_001, 1_764_000_000_123, 1_764_000_000_124], dtype=np.int64)
    vals = np.array([0.1, -1e300, 12345.678901234567], dtype=np.float64)
    batch = Batch("dev-a", 7, 1, "t", (Series("main", "p", "kW", Kind.GAUGE, ts, vals),))
    outcome = store.write(_plan(batch))
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT ts, value FROM readings ORDER BY ts").fetchall()
    assert outcome.readings == 3
    assert [(int(t.timestamp() * 1000), v) for t, v in rows] == list(
        zip(ts.tolist(), vals.tolist(), strict=True)
    )
    assert rows[0][0] == datetime(2000, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)


def test_batch_stored_twice_is_kept_once(store: ReadingStore, pg_url: str) -> None:
    """The same (device, seq) in a later flush is skipped entirely."""
    first = store.write(_plan(make_batch("dev-a", 1)))
    second = store.write(_plan(make_batch("dev-a", 1)))
    assert (first.new_batches, second.new_batches, second.duplicate_batches) == (1, 0, 1)
    assert count(pg_url, "SELECT count(*) FROM readings") == 10


def test_duplicates_within_one_flush_are_kept_once(store: ReadingStore, pg_url: str) -> None:
    """Two copies of a batch in one flush store its readings once."""
    outcome = store.write(_plan(make_batch("dev-a", 1), make_batch("dev-a", 2),
                                make_batch("dev-a", 1)))
    assert (outcome.new_batches, outcome.duplicate_batches) == (2, 1)
    assert count(pg_url, "SELECT count(*) FROM readings") == 20
    assert count(pg_url, "SELECT count(*) FROM batches") == 2


def test_same_seq_of_another_device_is_not_a_duplicate(store: ReadingStore, pg_url: str) -> None:
    """Deduplication is per device."""
    store.write(_plan(make_batch("dev-a", 1), make_batch("dev-b", 1)))
    assert count(pg_url, "SELECT count(*) FROM readings") == 20


def test_series_ids_are_cached_and_stable(pool: Pool, pg_url: str) -> None:
    """A series is registered once; a new store instance resolves the same ids."""
    store = ReadingStore(pool)
    store.write(_plan(make_batch("dev-a", 1, meters=3)))
    assert store.cached_series == 3
    ReadingStore(pool).write(_plan(make_batch("dev-a", 2, meters=3)))
    assert count(pg_url, "SELECT count(*) FROM series") == 3
    assert count(pg_url, "SELECT count(DISTINCT series_id) FROM readings") == 3


def test_usage_dirty_holds_the_time_range_per_series(store: ReadingStore, pg_url: str) -> None:
    """Each flush queues one usage_dirty row per series with min and max reading time."""
    b1, b2 = make_batch("dev-a", 1), make_batch("dev-a", 2)
    store.write(_plan(b1, b2))
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT ts_from, ts_to FROM usage_dirty").fetchall()
    lo = min(b1.series[0].ts_ms)
    hi = max(b2.series[0].ts_ms)
    assert [(int(a.timestamp() * 1000), int(b.timestamp() * 1000)) for a, b in rows] == [(lo, hi)]


def test_duplicate_flush_queues_no_usage_work(store: ReadingStore, pg_url: str) -> None:
    """A flush of only already-stored batches adds nothing to usage_dirty."""
    store.write(_plan(make_batch("dev-a", 1)))
    store.write(_plan(make_batch("dev-a", 1)))
    assert count(pg_url, "SELECT count(*) FROM usage_dirty") == 1


def test_dead_letters_keep_payload_topic_reason_and_field(
    store: ReadingStore, pg_url: str
) -> None:
    """Dead letters store the raw bytes, the topic, the reason and the field."""
    raw = b"\x00\xffnot a batch"
    store.write(FlushPlan(dead_letters=(DeadLetter("tally/v1/x/readings", raw, "bad", "seq", 1),)))
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT topic, payload, reason, field FROM dead_letters").fetchone()
    assert row == ("tally/v1/x/readings", raw, "bad", "seq")


def test_unit_change_of_a_series_becomes_a_dead_letter(store: ReadingStore, pg_url: str) -> None:
    """A batch whose series unit differs from the registered one is dead-lettered, not stored."""
    store.write(_plan(make_batch("dev-a", 1)))
    s = make_batch("dev-a", 2).series[0]
    wh = Series(s.meter, s.metric, "Wh", s.kind, s.ts_ms, s.values)
    changed = Batch("dev-a", 2, 1, "t", (wh,))
    outcome = store.write(_plan(changed))
    assert (outcome.new_batches, outcome.dead_letters) == (0, 1)
    assert count(pg_url, "SELECT count(*) FROM dead_letters WHERE field = 'unit'") == 1
    assert count(pg_url, "SELECT count(*) FROM batches") == 1


def test_latest_status_per_device_wins(store: ReadingStore, pg_url: str) -> None:
    """Status updates upsert by device and an older message never overwrites a newer one."""
    new = StatusUpdate("dev-a", 2000, "online", 5, '{"state":"online","buffer_depth":5}')
    old = StatusUpdate("dev-a", 1000, "offline", 0, '{"state":"offline"}')
    store.write(FlushPlan(statuses=(new,)))
    store.write(FlushPlan(statuses=(old,)))
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT state, buffer_depth, payload FROM device_status").fetchone()
    assert row == ("online", 5, {"state": "online", "buffer_depth": 5})


def test_unreachable_database_raises_unavailable_and_stores_nothing(
    pg_proxied: tuple[str, TcpProxy], pg_url: str
) -> None:
    """With the database cut off the write raises StorageUnavailable; after restore it works."""
    url, proxy = pg_proxied
    migrate(pg_url, use_timescale=False)
    pool = open_pool(url, min_size=1, max_size=1, timeout_s=1.0, connect_timeout_s=1)
    try:
        pool.wait(10)
        store = ReadingStore(pool, connection_timeout_s=1.0)
        proxy.cut()
        with pytest.raises(StorageUnavailable):
            store.write(_plan(make_batch("dev-a", 1)))
        assert store.cached_series == 0
        proxy.restore()
        for _ in range(50):
            try:
                store.write(_plan(make_batch("dev-a", 1)))
                break
            except StorageUnavailable:
                continue
    finally:
        pool.close()
    assert count(pg_url, "SELECT count(*) FROM readings") == 10


def test_device_counters_ignore_duplicates(store: ReadingStore, pg_url: str) -> None:
    """device_ingest counts each batch once, with its first/last seq and readings."""
    store.write(_plan(make_batch("dev-a", 3), make_batch("dev-a", 3)))
    store.write(_plan(make_batch("dev-a", 1), make_batch("dev-a", 3)))
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT batches, readings, first_seq, last_seq FROM device_ingest"
        ).fetchone()
    assert row == (2, 20, 1, 3)


def test_dead_letter_keeps_a_prefix_with_size_and_digest(pg_url: str) -> None:
    """A huge bad payload is stored as its first 64 KiB plus its full size and SHA-256."""
    migrate(pg_url, use_timescale=False)
    pool = open_pool(pg_url, min_size=1, max_size=1)
    try:
        raw = bytes(range(256)) * 4096  # 1 MiB
        ReadingStore(pool).write(
            FlushPlan(dead_letters=(DeadLetter("tally/v1/x/readings", raw, "bad", None, 1),))
        )
        with psycopg.connect(pg_url) as conn:
            conn.execute("INSERT INTO dead_letters (topic, payload, reason) VALUES"
                         " ('other', %s, 'written by hand')", (raw,))
            rows = conn.execute("SELECT payload, payload_size, payload_sha256 FROM dead_letters"
                                " ORDER BY id").fetchall()
    finally:
        pool.close()
    for payload, size, digest in rows:
        assert bytes(payload) == raw[:DEAD_LETTER_KEEP_BYTES]
        assert size == len(raw)
        assert bytes(digest) == hashlib.sha256(raw).digest()


def test_redelivered_old_status_never_looks_fresh(store: ReadingStore, pg_url: str) -> None:
    """Statuses are judged by their own ``ts``: an old retained status delivered again later
    (received after the newer one) does not replace it, and alone keeps its old time."""
    t_new, t_old, later = 1_767_225_600_000, 1_767_222_000_000, 1_767_229_200_000
    new = decode_status("tally/v1/dev-a/status", f'{{"state":"online","ts":{t_new}}}'.encode(),
                        t_new + 50)
    old = decode_status("tally/v1/dev-a/status", f'{{"state":"offline","ts":{t_old}}}'.encode(),
                        later)
    lone = decode_status("tally/v1/dev-b/status", f'{{"state":"online","ts":{t_old}}}'.encode(),
                         later)
    ahead = decode_status("tally/v1/dev-c/status",
                          f'{{"state":"online","ts":{later + 3_600_000}}}'.encode(), later)
    assert None not in (new, old, lone, ahead)
    store.write(FlushPlan(statuses=(new,)))  # type: ignore[arg-type]
    store.write(FlushPlan(statuses=(old, lone, ahead)))  # type: ignore[arg-type]
    with psycopg.connect(pg_url) as conn:
        rows = {d: (s, int(t)) for d, s, t in conn.execute(
            "SELECT device_id, state, (extract(epoch FROM as_of) * 1000)::bigint"
            " FROM device_status").fetchall()}
    assert rows["dev-a"] == ("online", t_new)
    assert rows["dev-b"] == ("online", t_old)      # arrived late: stays old
    assert rows["dev-c"] == ("online", later)      # clock ahead: no later than its arrival


def test_a_confirmation_alone_keeps_the_counts_and_adds_no_device(
    store: ReadingStore, pg_url: str
) -> None:
    """A flush that only confirms (a redelivered batch) moves ``confirmed_seq`` and leaves the
    batch counts as they were; a device without counts gets no ``device_ingest`` row."""
    store.write(_plan(make_batch("dev-a", 1), make_batch("dev-b", 1)))
    with psycopg.connect(pg_url) as conn:
        before = conn.execute("SELECT batches, readings, first_seq, last_seq, last_seen"
                              " FROM device_ingest WHERE device_id = 'dev-a'").fetchone()
        conn.execute("DELETE FROM device_ingest WHERE device_id = 'dev-b'")
    again = FlushPlan(batches=(_decoded(make_batch("dev-a", 1)), _decoded(make_batch("dev-b", 1))),
                      ack_from=(("dev-a", 1), ("dev-b", 1)))
    outcome = store.write(again)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT device_id, batches, readings, first_seq, last_seq, last_seen,"
                            " confirmed_seq FROM device_ingest ORDER BY device_id").fetchall()
    assert before is not None
    assert outcome.durable == (("dev-a", (1,)), ("dev-b", (1,)))
    assert rows == [("dev-a", *before, 1)]
