"""The P1 framer: any chunking yields the same telegrams; garbage is skipped and counted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.dsmr.framer import TelegramFramer
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.p1 import make_telegram
from tests.firmware_bridge.conftest import T0

MODEL = LoadModel(t0_s=T0)
TELEGRAMS = [make_telegram(MODEL, T0 + 10 * i) for i in range(3)]
# noise that cannot contain a telegram start
NOISE = st.binary(max_size=40).map(lambda b: b.replace(b"/", b"x"))


def _feed_in_chunks(stream: bytes, cuts: list[int]) -> tuple[list[bytes], TelegramFramer]:
    framer = TelegramFramer()
    out: list[bytes] = []
    points = sorted({c % (len(stream) + 1) for c in cuts})
    start = 0
    for p in [*points, len(stream)]:
        out += framer.feed(stream[start:p])
        start = p
    return out, framer


@given(
    noise=st.lists(NOISE, min_size=len(TELEGRAMS) + 1, max_size=len(TELEGRAMS) + 1),
    cuts=st.lists(st.integers(0, 10_000), max_size=60),
)
@settings(max_examples=200)
def test_any_chunking_gives_the_same_telegrams(noise: list[bytes], cuts: list[int]) -> None:
    """Telegrams separated by noise come out whole and in order, however the bytes are split."""
    stream = noise[0] + b"".join(t + n for t, n in zip(TELEGRAMS, noise[1:], strict=True))
    whole, whole_framer = _feed_in_chunks(stream, [])
    chunked, framer = _feed_in_chunks(stream, cuts)
    assert chunked == whole == TELEGRAMS
    assert framer.skipped_bytes == whole_framer.skipped_bytes


@given(stream=st.binary(max_size=600), cuts=st.lists(st.integers(0, 1000), max_size=30))
def test_arbitrary_bytes_frame_identically_in_any_chunking(stream: bytes, cuts: list[int]) -> None:
    """For any byte stream the frames found do not depend on the chunk boundaries."""
    assert _feed_in_chunks(stream, cuts)[0] == _feed_in_chunks(stream, [])[0]


def test_noise_between_telegrams_is_counted() -> None:
    """Bytes outside telegrams are skipped and counted exactly."""
    framer = TelegramFramer()
    out = framer.feed(b"\x00\xffnoise" + TELEGRAMS[0] + b"abc" + TELEGRAMS[1])
    assert out == TELEGRAMS[:2]
    assert framer.skipped_bytes == len(b"\x00\xffnoise") + len(b"abc")


def test_telegram_cut_by_a_new_start_is_dropped() -> None:
    """A telegram cut mid-way (reader started late, line glitch) is skipped; the next is kept."""
    framer = TelegramFramer()
    partial = TELEGRAMS[0][:100]
    assert framer.feed(partial + TELEGRAMS[1]) == [TELEGRAMS[1]]
    assert framer.skipped_bytes == 100


def test_incomplete_crc_waits_for_more_bytes() -> None:
    """A telegram whose CRC line has not fully arrived is held back until it has."""
    framer = TelegramFramer()
    t = TELEGRAMS[0]
    assert framer.feed(t[:-3]) == []
    assert framer.feed(t[-3:]) == [t]


def test_dsmr22_telegram_without_crc_is_framed() -> None:
    """Old meters end with a bare '!' line; that is a complete frame too."""
    old = b"/ISk5\\2MT382-1004\r\n\r\n1-0:1.8.1(00001.001*kWh)\r\n!\r\n"
    assert TelegramFramer().feed(old) == [old]


def test_oversized_frame_is_abandoned() -> None:
    """A start with no end within the size limit is skipped, so memory stays bounded."""
    assert len(TELEGRAMS[0]) < 1024
    framer = TelegramFramer(max_bytes=1024)
    assert framer.feed(b"/" + b"a" * 2000) == []
    assert framer.skipped_bytes == 2001
    assert framer.feed(TELEGRAMS[0]) == [TELEGRAMS[0]]
