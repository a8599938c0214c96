"""Read-side queries: device ingest status with sequence gaps, raw readings, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.protocol import encode_batch, readings_topic
from collector.ingest.messages import DeadLetter, DecodedBatch, FlushPlan, StatusUpdate
from collector.storage import ingest_queries as q
from collector.storage.database import Pool
from collector.storage.ingest_store import ReadingStore
from tests.collector.ingest.synthetic import BASE_MS, make_batch


def _store_seqs(store: ReadingStore, device: str, seqs: list[int]) -> None:
    batches = [make_batch(device, s) for s in seqs]
    store.write(FlushPlan(batches=tuple(
        DecodedBatch(b, readings_topic(device), encode_batch(b), BASE_MS) for b in batches
    )))


def test_missing_sequence_ranges_are_reported(store: ReadingStore, pool: Pool) -> None:
    """Seqs 1,2,5,9 give gaps 3-4 and 6-8 and 5 missing batches."""
    _store_seqs(store, "dev-a", [1, 2, 5, 9])
    d = q.device_ingest(pool, "dev-a")
    assert d is not None
    assert [(g.first, g.last) for g in d.gaps] == [(3, 4), (6, 8)]
    assert (d.batches, d.readings, d.first_seq, d.last_seq, d.missing_batches) == (4, 40, 1, 9, 5)


def test_unknown_device_has_no_status(pool: Pool) -> None:
    """A device that never sent anything is None."""
    assert q.device_ingest(pool, "nobody") is None


def test_device_with_only_a_status_is_listed(store: ReadingStore, pool: Pool) -> None:
    """A device known only from its status message appears in the device list."""
    store.write(FlushPlan(statuses=(StatusUpdate("dev-s", BASE_MS, "online", 2, "{}"),)))
    devices = q.list_devices(pool)
    assert [(d.device_id, d.batches, d.status.buffer_depth if d.status else None)
            for d in devices] == [("dev-s", 0, 2)]


def test_meter_readings_are_filtered_by_time_range(store: ReadingStore, pool: Pool) -> None:
    """Only readings in [from, to) of the meter are returned, in time order."""
    _store_seqs(store, "dev-a", [0])
    start = datetime.fromtimestamp((BASE_MS + 2000) / 1000, UTC)
    end = datetime.fromtimestamp((BASE_MS + 5000) / 1000, UTC)
    rows = q.meter_readings(pool, "dev-a", "m0", metric="energy", ts_from=start, ts_to=end,
                            limit=100)
    assert [r.value for r in rows] == [0.5, 0.75, 1.0]


def test_dead_letters_page_newest_first(store: ReadingStore, pool: Pool) -> None:
    """Pages go from the newest id down; ``before_id`` continues after the last one seen."""
    letters = tuple(DeadLetter("t", bytes([i]), f"r{i}", None, BASE_MS) for i in range(5))
    store.write(FlushPlan(dead_letters=letters))
    first = q.dead_letters(pool, limit=2)
    second = q.dead_letters(pool, limit=2, before_id=first[-1].id)
    assert [r.reason for r in first + second] == ["r4", "r3", "r2", "r1"]
