"""The collector trusts nothing it did not register: unknown and decommissioned devices are
dead-lettered, statuses of unknown devices ignored, reused seqs with other readings kept as
conflicts (and shown to staff), identical redeliveries deduplicated."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from fastapi.testclient import TestClient

from agent.protocol import Batch, encode_batch, readings_topic
from agent.protocol_ack import Outcome, decode_ack
from collector.devices.model import Device, DeviceState
from collector.ingest.acks import build_acks
from collector.ingest.messages import DecodedBatch, FlushPlan, StatusUpdate
from collector.storage.database import Pool
from collector.storage.devices_store import DeviceStore
from collector.storage.ingest_store import ReadingStore
from tests.collector.ingest.synthetic import BASE_MS, make_batch

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _plan(*batches: Batch, statuses: tuple[StatusUpdate, ...] = ()) -> FlushPlan:
    return FlushPlan(tuple(DecodedBatch(b, readings_topic(b.device), encode_batch(b), BASE_MS)
                           for b in batches), statuses)


def _register(pool: Pool, *ids: str, state: DeviceState = DeviceState.ACTIVE) -> None:
    DeviceStore(pool).register([Device(i, "c", "s", state, (), 1, NOW) for i in ids])


def _count(pool: Pool, sql: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_unknown_and_decommissioned_devices_are_dead_lettered(pool: Pool) -> None:
    _register(pool, "dev-ok")
    _register(pool, "dev-gone", state=DeviceState.DECOMMISSIONED)
    store = ReadingStore(pool, registered_only=True)
    out = store.write(_plan(make_batch("dev-ok", 1), make_batch("dev-forged", 1),
                            make_batch("dev-gone", 1)))
    assert out.new_batches == 1
    assert out.dead_letters == 2
    with pool.connection() as conn:
        reasons = dict(conn.execute(
            "SELECT topic, reason FROM dead_letters ORDER BY id").fetchall())
        devices = [r[0] for r in conn.execute("SELECT DISTINCT device_id FROM series")]
    assert "not registered" in reasons[readings_topic("dev-forged")]
    assert "decommissioned" in reasons[readings_topic("dev-gone")]
    assert devices == ["dev-ok"]  # nothing of the others reached series or readings


def test_statuses_of_unknown_devices_are_ignored(pool: Pool) -> None:
    _register(pool, "dev-ok")
    doc = '{"state":"online"}'
    ReadingStore(pool, registered_only=True).write(_plan(statuses=(
        StatusUpdate("dev-ok", BASE_MS, "online", 0, doc),
        StatusUpdate("dev-stranger", BASE_MS, "online", 0, doc),
    )))
    assert _count(pool, "SELECT count(*) FROM device_status") == 1
    assert _count(pool, "SELECT count(*) FROM device_status WHERE device_id = 'dev-ok'") == 1


def test_same_seq_with_other_readings_is_a_conflict_not_a_duplicate(
    pool: Pool, client: TestClient
) -> None:
    _register(pool, "dev-a")
    store = ReadingStore(pool, registered_only=True)
    genuine = make_batch("dev-a", 7)
    assert store.write(_plan(genuine)).new_batches == 1
    again = store.write(_plan(genuine))  # an identical redelivery
    assert again.duplicate_batches == 1
    assert again.conflicts == 0
    s = genuine.series[0]
    forged = Batch("dev-a", 7, genuine.sent_ms, "forged", (
        type(s)(s.meter, s.metric, s.unit, s.kind, s.ts_ms, s.values + np.float64(1e6)),))
    plan = FlushPlan(_plan(forged).batches, ack_from=(("dev-a", 7),))
    out = store.write(plan)
    assert out.conflicts == 1
    assert out.duplicate_batches == 0
    assert out.new_batches == 0
    # the device is told it is a conflict (not a duplicate): it forgets the copy and says so
    [ack] = build_acks(plan, out)
    assert decode_ack(ack.payload, topic_device="dev-a").outcome(7) is Outcome.CONFLICT
    redelivery = FlushPlan(_plan(genuine).batches, ack_from=(("dev-a", 7),))
    [ack] = build_acks(redelivery, store.write(redelivery))
    assert decode_ack(ack.payload, topic_device="dev-a").outcome(7) is Outcome.DUPLICATE
    # the stored readings are still the genuine ones
    with pool.connection() as conn:
        total = conn.execute("SELECT sum(value) FROM readings").fetchone()
    assert total is not None
    assert float(total[0]) == sum(s.values)
    rows = client.get("/devices/conflicts", params={"device_id": "dev-a"}).json()
    assert len(rows) == 1
    assert rows[0]["seq"] == 7
    assert "different readings" in rows[0]["reason"]
    assert rows[0]["digest"] != rows[0]["stored_digest"]


def test_conflicting_copies_within_one_flush(pool: Pool) -> None:
    _register(pool, "dev-a")
    genuine = make_batch("dev-a", 3)
    other = make_batch("dev-a", 4)
    clash = Batch("dev-a", 3, other.sent_ms, "x", other.series)
    out = ReadingStore(pool, registered_only=True).write(_plan(genuine, genuine, clash))
    assert out.new_batches == 1
    assert out.duplicate_batches == 1
    assert out.conflicts == 1


def test_accept_unregistered_keeps_the_old_behaviour(pool: Pool) -> None:
    out = ReadingStore(pool).write(_plan(make_batch("dev-anything", 1)))
    assert out.new_batches == 1
    assert out.dead_letters == 0


def test_collector_config_defaults_to_registered_only() -> None:
    from collector.config import load_config  # noqa: PLC0415

    assert load_config(None, {}).devices.accept_unregistered is False
    assert load_config(None, {"TALLY_DEVICES_ACCEPT_UNREGISTERED": "true"}
                       ).devices.accept_unregistered is True
