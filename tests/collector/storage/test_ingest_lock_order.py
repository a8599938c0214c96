"""Two collectors' flushes over the same devices never deadlock (real PostgreSQL).

On a shared subscription the batches of one device reach either collector, so two flushes in
two transactions often touch the same devices' rows at once. They must lock them in one order.
"""

from __future__ import annotations

import threading
import time

import psycopg

from agent.protocol import Batch, encode_batch, readings_topic
from collector.errors import StorageConflict, StorageError
from collector.ingest.messages import DecodedBatch, FlushPlan, StatusUpdate
from collector.storage.database import Pool, translate_errors
from collector.storage.ingest_store import ReadingStore
from tests.collector.ingest.synthetic import make_batch


def _decoded(batch: Batch) -> DecodedBatch:
    return DecodedBatch(batch, readings_topic(batch.device), encode_batch(batch), 1_764_000_100_000)


def _status(device: str) -> StatusUpdate:
    return StatusUpdate(device, 1_764_000_100_000, "online", 0, '{"state":"online"}')


def _waiting_on_locks(conn: psycopg.Connection[tuple[object, ...]], n: int) -> bool:
    """True once ``n`` other sessions of this database wait for a lock."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()
        if row is not None and int(row[0]) >= n:  # type: ignore[call-overload]
            return True
        time.sleep(0.02)
    return False


def test_crossed_flushes_of_two_collectors_do_not_deadlock(pool: Pool, pg_url: str) -> None:
    """Flush 1 stores a new batch of dev-a and a repeat of dev-b, flush 2 the reverse; both
    confirm both devices. Held apart until each has counted its new batch (a third session
    locks the status rows they write next), they used to lock ``device_ingest`` rows in
    opposite orders, and one was aborted as a deadlock victim."""
    seed = ReadingStore(pool)
    seed.write(FlushPlan(batches=(_decoded(make_batch("dev-a", 1)),
                                  _decoded(make_batch("dev-b", 1)))))
    seed.write(FlushPlan(statuses=(_status("gate-1"), _status("gate-2"))))
    flushes = [
        FlushPlan(batches=(_decoded(make_batch("dev-a", 2)), _decoded(make_batch("dev-b", 1))),
                  statuses=(_status("gate-1"),), ack_from=(("dev-a", 1), ("dev-b", 1))),
        FlushPlan(batches=(_decoded(make_batch("dev-b", 2)), _decoded(make_batch("dev-a", 1))),
                  statuses=(_status("gate-2"),), ack_from=(("dev-b", 1), ("dev-a", 1))),
    ]
    errors: list[StorageError] = []

    def flush(plan: FlushPlan) -> None:
        try:
            ReadingStore(pool).write(plan)
        except StorageError as exc:
            errors.append(exc)

    with psycopg.connect(pg_url) as gate:
        gate.execute("SELECT 1 FROM device_status FOR UPDATE")
        threads = [threading.Thread(target=flush, args=(p,)) for p in flushes]
        for t in threads:
            t.start()
        with psycopg.connect(pg_url, autocommit=True) as watch:
            assert _waiting_on_locks(watch, 2)  # both flushes are held inside their transaction
        gate.rollback()
        for t in threads:
            t.join(30)
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT device_id, batches, last_seq, confirmed_seq FROM device_ingest"
                            " ORDER BY device_id").fetchall()
    assert rows == [("dev-a", 2, 2, 2), ("dev-b", 2, 2, 2)]


def test_a_deadlock_victim_is_a_storage_conflict(pg_url: str) -> None:
    """A transaction PostgreSQL aborts to break a deadlock is reported as ``StorageConflict``
    (retry it), not as a failure of the flush's data."""
    with psycopg.connect(pg_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE lock_rows (id int PRIMARY KEY)")
        setup.execute("INSERT INTO lock_rows VALUES (1), (2)")
    caught: list[BaseException] = []
    barrier = threading.Barrier(2)

    def cross(first: int, second: int) -> None:
        try:
            with translate_errors("cross"), psycopg.connect(pg_url) as conn:
                conn.execute("SELECT 1 FROM lock_rows WHERE id = %s FOR UPDATE", (first,))
                barrier.wait(10)
                conn.execute("SELECT 1 FROM lock_rows WHERE id = %s FOR UPDATE", (second,))
        except StorageError as exc:
            caught.append(exc)

    threads = [threading.Thread(target=cross, args=a) for a in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(caught) == 1
    assert isinstance(caught[0], StorageConflict)
