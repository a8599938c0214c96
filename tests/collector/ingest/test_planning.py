"""Pure flush planning: every message ends as a batch, a status or a dead letter."""

from __future__ import annotations

import pytest

from agent.protocol import Batch, encode_batch, readings_topic
from collector.ingest.decoders import DecoderTable
from collector.ingest.messages import InboundMessage
from collector.ingest.planning import plan_flush
from tests.collector.ingest.bad_inputs import bad_inputs
from tests.collector.ingest.synthetic import make_batch

NOW_MS = 1_764_000_000_000


def _msg(topic: str, payload: bytes, mid: int = 1) -> InboundMessage:
    return InboundMessage(topic, payload, mid, 1, NOW_MS)


@pytest.mark.parametrize("bad", bad_inputs("dev-x", NOW_MS), ids=lambda b: b.name)
def test_bad_input_becomes_a_dead_letter_naming_the_field(bad: object) -> None:
    """Each malformed message is one dead letter with a reason and the offending field."""
    from tests.collector.ingest.bad_inputs import BadInput  # noqa: PLC0415

    assert isinstance(bad, BadInput)
    plan = plan_flush([_msg(bad.topic, bad.payload)], DecoderTable())
    assert (len(plan.batches), len(plan.dead_letters)) == (0, 1)
    letter = plan.dead_letters[0]
    assert letter.reason
    assert letter.field == bad.field
    assert letter.payload == bad.payload


def test_good_batch_is_decoded() -> None:
    """A valid batch is planned for storage with its message."""
    batch = make_batch("dev-x", 3)
    plan = plan_flush([_msg(readings_topic("dev-x"), encode_batch(batch))], DecoderTable())
    assert [d.batch.seq for d in plan.batches] == [3]
    assert plan.dead_letters == ()


def test_status_message_is_parsed() -> None:
    """A status JSON object yields state and buffer depth."""
    plan = plan_flush([_msg("tally/v1/dev-x/status", b'{"state":"online","buffered":12}')],
                      DecoderTable())
    assert [(s.device, s.state, s.buffer_depth) for s in plan.statuses] == [("dev-x", "online", 12)]


def test_empty_retained_status_is_ignored() -> None:
    """An empty status payload (a cleared retained message) produces nothing."""
    assert len(plan_flush([_msg("tally/v1/dev-x/status", b"")], DecoderTable())) == 0


def test_bad_status_becomes_a_dead_letter() -> None:
    """A status that is not a JSON object is dead-lettered."""
    plan = plan_flush([_msg("tally/v1/dev-x/status", b"[1]")], DecoderTable())
    assert len(plan.dead_letters) == 1


def test_status_with_nul_character_becomes_a_dead_letter() -> None:
    """A status holding U+0000 (not storable as jsonb) is dead-lettered."""
    plan = plan_flush([_msg("tally/v1/dev-x/status", b'{"state":"a\\u0000"}')], DecoderTable())
    assert len(plan.dead_letters) == 1


def test_topic_without_decoder_becomes_a_dead_letter() -> None:
    """A message on a topic no decoder handles is dead-lettered with field 'topic'."""
    plan = plan_flush([_msg("other/topic", b"{}")], DecoderTable())
    assert [d.field for d in plan.dead_letters] == ["topic"]


def test_unexpected_decoder_exception_becomes_internal_dead_letter() -> None:
    """A decoder bug is caught per message as an 'internal:' dead letter."""

    def broken(topic: str, payload: bytes, now_ms: int) -> Batch:
        raise KeyError("boom")

    table = DecoderTable().with_decoder("senml/+", broken)
    good = make_batch("dev-x", 1)
    plan = plan_flush(
        [_msg("senml/a", b"x"), _msg(readings_topic("dev-x"), encode_batch(good))], table
    )
    assert plan.dead_letters[0].reason.startswith("internal: KeyError")
    assert len(plan.batches) == 1


def test_added_decoder_handles_its_topics() -> None:
    """A decoder added for a (shared-subscription) filter decodes matching topics."""
    batch = make_batch("dev-y", 9)
    table = DecoderTable().with_decoder("$share/g/senml/+", lambda t, p, n: batch)
    plan = plan_flush([_msg("senml/dev-y", b"anything")], table)
    assert [d.batch for d in plan.batches] == [batch]
