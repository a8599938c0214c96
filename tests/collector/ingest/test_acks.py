"""End-to-end acknowledgement on the collector side: what each device is told after a commit."""

from __future__ import annotations

from dataclasses import replace

import cbor2
import psycopg

from agent.protocol import Encoding, encode_batch, readings_topic
from agent.protocol_ack import Outcome, decode_ack
from collector.ingest.acks import build_acks, confirmed_upto
from collector.ingest.decoders import DecoderTable
from collector.ingest.messages import InboundMessage, OutboundAck
from collector.ingest.planning import plan_flush
from collector.ingest.ports import InMemoryIngestStore
from collector.ingest.senml import senml_decoder
from collector.storage.database import open_pool
from collector.storage.ingest_queries import device_ingest
from collector.storage.ingest_store import ReadingStore
from collector.storage.migrate import migrate
from tests.collector.ingest.synthetic import make_batch

NOW = 1_764_000_000_000


def msg(device: str, seq: int, *, low: int | None = None,
        encoding: Encoding = Encoding.JSON) -> InboundMessage:
    batch = replace(make_batch(device, seq), low=low)
    return InboundMessage(readings_topic(device), encode_batch(batch, encoding), seq, 1, NOW)


def by_device(acks: list[OutboundAck]) -> dict[str, OutboundAck]:
    return {a.topic.split("/")[2]: a for a in acks}


def test_stored_and_duplicate_batches_are_confirmed_with_their_outcome() -> None:
    """After a commit each device hears which of its seqs are durable; a re-sent one as dup."""
    store = InMemoryIngestStore()
    store.write(plan_flush([msg("a", 5)], DecoderTable()))
    plan = plan_flush([msg("a", 5), msg("a", 6), msg("b", 1)], DecoderTable())
    acks = by_device(build_acks(plan, store.write(plan)))
    assert set(acks) == {"a", "b"}
    assert acks["a"].topic == "tally/v1/a/ack"
    a = decode_ack(acks["a"].payload, topic_device="a")
    assert (a.outcome(5), a.outcome(6), a.outcome(7)) == (Outcome.DUPLICATE, Outcome.STORED, None)
    assert decode_ack(acks["b"].payload, topic_device="b").outcome(1) is Outcome.STORED


def test_the_agents_low_reaches_back_to_earlier_commits() -> None:
    """With ``low``, the acknowledgement lists every durable seq from there (the watermark)."""
    store = InMemoryIngestStore()
    for seq in (10, 11, 13):
        store.write(plan_flush([msg("a", seq)], DecoderTable()))
    plan = plan_flush([msg("a", 14, low=10)], DecoderTable())
    ack = decode_ack(build_acks(plan, store.write(plan))[0].payload, topic_device="a")
    assert ack.from_seq == 10
    assert ack.ok == ((10, 11), (13, 14))
    assert confirmed_upto(10, (10, 11, 13, 14)) == 11
    assert confirmed_upto(9, (10, 11)) is None


def test_a_dead_lettered_batch_is_confirmed_as_dead_with_its_reason() -> None:
    """A batch that fails validation is acknowledged as dead-lettered, so it is not re-sent."""
    bad = b'{"v":1,"device":"a","seq":77,"sent":1764000000000,"agent":"x","series":[]}'
    plan = plan_flush([InboundMessage(readings_topic("a"), bad, 1, 1, NOW)], DecoderTable())
    ack = decode_ack(build_acks(plan, InMemoryIngestStore().write(plan))[0].payload,
                     topic_device="a")
    assert ack.outcome(77) is Outcome.DEAD_LETTERED
    assert "series" in ack.dead[0][1]


def test_cbor_batches_are_answered_in_cbor() -> None:
    """The acknowledgement uses the encoding of the device's batches."""
    plan = plan_flush([msg("a", 1, encoding=Encoding.CBOR)], DecoderTable())
    payload = build_acks(plan, InMemoryIngestStore().write(plan))[0].payload
    assert 0xA0 <= payload[0] <= 0xBF
    assert cbor2.loads(payload)["ok"] == [[1, 1]]


def test_senml_devices_get_no_acknowledgement() -> None:
    """SenML packs published straight to the collector are not acknowledged end to end."""
    decoders = DecoderTable().with_decoder("tally/v1/+/senml", senml_decoder)
    pack = b'[{"bn":"urn:dev:mac:1:","bt":1764000000,"n":"energy","u":"kWh","s":1.5}]'
    plan = plan_flush([InboundMessage("tally/v1/s1/senml", pack, 1, 1, NOW)], decoders)
    assert plan.batches or plan.dead_letters
    assert build_acks(plan, InMemoryIngestStore().write(plan)) == []


def test_postgres_store_lists_durable_seqs_and_records_the_confirmed_seq(pg_url: str) -> None:
    """The PostgreSQL store computes the watermark in the flush's transaction and keeps the
    device's confirmed seq for /devices/{id}/ingest."""
    migrate(pg_url, use_timescale=False)
    pool = open_pool(pg_url, min_size=1, max_size=2)
    try:
        store = ReadingStore(pool)
        for seq in (100, 101, 103):
            store.write(plan_flush([msg("pg-a", seq)], DecoderTable()))
        plan = plan_flush([msg("pg-a", 102, low=100), msg("pg-a", 101)], DecoderTable())
        outcome = store.write(plan)
        assert outcome.durable == (("pg-a", (100, 101, 102, 103)),)
        assert outcome.duplicates == (("pg-a", 101),)
        ack = decode_ack(build_acks(plan, outcome)[0].payload, topic_device="pg-a")
        assert ack.ok == ((100, 103),)
        assert ack.outcome(101) is Outcome.DUPLICATE
        info = device_ingest(pool, "pg-a")
        assert info is not None
        assert info.confirmed_seq == 103
        assert info.confirmed_at is not None
    finally:
        pool.close()
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT confirmed_seq FROM device_ingest").fetchone()
    assert row == (103,)


def test_skipped_seqs_reported_by_the_agent_are_not_gaps(pg_url: str) -> None:
    """Seqs the agent dropped (drop_oldest) and reported in ``skipped`` are recorded as
    deliberate: /devices/{id}/ingest lists no gap and no missing batch for them."""
    migrate(pg_url, use_timescale=False)
    pool = open_pool(pg_url, min_size=1, max_size=2)
    try:
        store = ReadingStore(pool)
        store.write(plan_flush([msg("pg-s", 1)], DecoderTable()))
        store.write(plan_flush([msg("pg-s", 5)], DecoderTable()))
        before = device_ingest(pool, "pg-s")
        assert before is not None
        assert [(g.first, g.last) for g in before.gaps] == [(2, 4)]
        batch = replace(make_batch("pg-s", 6), low=6, skipped=((2, 4),))
        store.write(plan_flush([InboundMessage(readings_topic("pg-s"), encode_batch(batch), 1,
                                               1, NOW)], DecoderTable()))
        after = device_ingest(pool, "pg-s")
        assert after is not None
        assert after.gaps == ()
        assert after.missing_batches == 0
        assert after.skipped_batches == 3
    finally:
        pool.close()
