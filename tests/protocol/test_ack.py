"""The end-to-end acknowledgement (tally/v1/<device>/ack): golden files, round trip, bad input.

``golden/ack_v1.json`` was written by hand from docs/protocol.md; ``golden/ack_v1.cbor`` is the
same map in CBOR (made with cbor2 from the JSON document, independently of our encoder).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ProtocolError
from agent.protocol import Encoding
from agent.protocol_ack import (
    Ack,
    Outcome,
    ack_topic,
    decode_ack,
    encode_ack,
    peek_batch_key,
    seq_ranges,
)

GOLDEN = Path(__file__).parent / "golden"
S = 1_732_492_800_000_000


def fixed_ack() -> Ack:
    return Ack("gw-0001", S, ((S, S + 5), (S + 7, S + 7)), ((S + 3, S + 3),),
               ((S + 6, "series[0] has a timestamp more than 1 day in the future"),))


def test_json_encoding_matches_golden_bytes() -> None:
    """encode_ack(JSON) of the fixed acknowledgement is exactly the hand-written golden file."""
    assert encode_ack(fixed_ack()) == (GOLDEN / "ack_v1.json").read_bytes()


def test_cbor_encoding_matches_golden_bytes() -> None:
    """encode_ack(CBOR) is exactly the golden CBOR file, which holds the JSON golden's map."""
    golden = (GOLDEN / "ack_v1.cbor").read_bytes()
    assert encode_ack(fixed_ack(), Encoding.CBOR) == golden
    assert cbor2.loads(golden) == json.loads((GOLDEN / "ack_v1.json").read_bytes())


def test_golden_files_decode_to_the_fixed_ack() -> None:
    """Both golden files decode to the fixed acknowledgement."""
    for name in ("ack_v1.json", "ack_v1.cbor"):
        assert decode_ack((GOLDEN / name).read_bytes(), topic_device="gw-0001") == fixed_ack()


def test_outcome_of_each_seq() -> None:
    """ok ranges mean stored, dup duplicate, dead dead-lettered, anything else unconfirmed."""
    ack = fixed_ack()
    assert ack.outcome(S) is Outcome.STORED
    assert ack.outcome(S + 5) is Outcome.STORED
    assert ack.outcome(S + 3) is Outcome.DUPLICATE
    assert ack.outcome(S + 6) is Outcome.DEAD_LETTERED
    assert ack.outcome(S + 8) is None
    assert ack.outcome(S - 1) is None
    assert ack.outcomes([S - 1, S + 1, S + 8]) == {S + 1: Outcome.STORED}


def test_conflict_ranges_are_named_and_take_precedence_over_ok() -> None:
    """A seq in ``conflict`` (stored before with other readings) is a conflict even though the
    stored batch makes it durable (``ok``); the field round-trips and older readers ignore it."""
    payload = b'{"v":1,"device":"gw-0001","from":5,"ok":[[5,9]],"conflict":[[7,8]]}'
    ack = decode_ack(payload, topic_device="gw-0001")
    assert ack.conflict == ((7, 8),)
    assert [ack.outcome(s) for s in (5, 7, 8, 9)] == [
        Outcome.STORED, Outcome.CONFLICT, Outcome.CONFLICT, Outcome.STORED]
    assert encode_ack(ack) == payload
    with pytest.raises(ProtocolError) as err:
        decode_ack(b'{"v":1,"device":"d","from":1,"ok":[],"conflict":[[2,1]]}',
                   topic_device=None)
    assert err.value.field == "conflict"


def test_topic() -> None:
    assert ack_topic("gw-0001") == "tally/v1/gw-0001/ack"
    with pytest.raises(ProtocolError):
        ack_topic("bad/device")


seqs = st.integers(0, 2**63 - 1)


@st.composite
def acks(draw: st.DrawFn) -> Ack:
    def ranges() -> tuple[tuple[int, int], ...]:
        pairs = draw(st.lists(st.tuples(seqs, seqs), max_size=8))
        return tuple((min(a, b), max(a, b)) for a, b in pairs)

    dead = draw(st.lists(st.tuples(seqs, st.text(max_size=200)), max_size=4))
    return Ack(draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,20}\Z")), draw(seqs),
               ranges(), ranges(), tuple(dead), ranges())


@settings(max_examples=150, deadline=None)
@given(acks(), st.sampled_from(list(Encoding)))
def test_decode_inverts_encode(ack: Ack, encoding: Encoding) -> None:
    """Any acknowledgement survives an encode/decode round trip, in either encoding."""
    assert decode_ack(encode_ack(ack, encoding), topic_device=ack.device) == ack


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=60))
def test_seq_ranges_cover_exactly_the_seqs(values: list[int]) -> None:
    """seq_ranges merges a set into sorted, disjoint, non-adjacent ranges holding exactly it."""
    ranges = seq_ranges(values)
    covered = {s for lo, hi in ranges for s in range(lo, hi + 1)}
    assert covered == set(values)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges))


@pytest.mark.parametrize(("payload", "field"), [
    (b'{"v":2,"device":"d","from":1,"ok":[]}', "v"),
    (b'{"v":1,"device":"d/x","from":1,"ok":[]}', "device"),
    (b'{"v":1,"device":"other","from":1,"ok":[]}', "device"),
    (b'{"v":1,"device":"d","from":-1,"ok":[]}', "from"),
    (b'{"v":1,"device":"d","from":1,"ok":[[3,2]]}', "ok"),
    (b'{"v":1,"device":"d","from":1,"ok":[[1]]}', "ok"),
    (b'{"v":1,"device":"d","from":1,"ok":[["1",2]]}', "ok"),
    (b'{"v":1,"device":"d","from":1,"ok":[],"dead":[[1]]}', "dead"),
    (b'[1,2]', "payload"),
    (b'', "payload"),
])
def test_bad_acks_are_named(payload: bytes, field: str) -> None:
    """A malformed acknowledgement raises ProtocolError naming the offending field."""
    with pytest.raises(ProtocolError) as err:
        decode_ack(payload, topic_device="d")
    assert err.value.field == field


def test_peek_batch_key_reads_the_seq_of_an_invalid_batch() -> None:
    """The collector can name the seq of a batch it dead-letters, if the payload has one."""
    assert peek_batch_key(b'{"v":1,"seq":42,"series":"nonsense"}') == 42
    assert peek_batch_key(cbor2.dumps({"seq": 7})) == 7
    assert peek_batch_key(b'{"seq":"42"}') is None
    assert peek_batch_key(b"not json") is None


def test_batch_low_and_skipped_round_trip_and_are_checked() -> None:
    """The envelope's optional ``low`` and ``skipped`` survive encoding; bad ones are named."""
    from dataclasses import replace  # noqa: PLC0415

    from agent.protocol import decode_batch, encode_batch  # noqa: PLC0415
    from tests.protocol.test_golden import NOW_MS, fixed_batch  # noqa: PLC0415

    batch = replace(fixed_batch(), low=S - 5, skipped=((S - 9, S - 7), (S - 6, S - 6)))
    for enc in Encoding:
        assert decode_batch(encode_batch(batch, enc), topic_device="gw-0001",
                            now_ms=NOW_MS) == batch
    doc = json.loads(encode_batch(fixed_batch()))
    for bad, field in (({"low": S + 1}, "low"), ({"skipped": [[5, 4]]}, "skipped"),
                       ({"skipped": [[1]]}, "skipped"), ({"skipped": "x"}, "skipped")):
        with pytest.raises(ProtocolError) as err:
            decode_batch(json.dumps({**doc, **bad}).encode(), topic_device="gw-0001",
                         now_ms=NOW_MS)
        assert err.value.field == field
