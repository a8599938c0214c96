"""P1 telegram decoding with dsmr-parser (fixture: DSMR 5.0.2 P1 companion standard example)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from dsmr_parser.parsers import TelegramParser
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.protocol import Kind
from firmware_bridge.dsmr.telegram import DsmrSpec, decode_telegram
from firmware_bridge.errors import DecodeError, FrameError
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.p1 import crc16_arc, make_telegram, seal
from tests.firmware_bridge.conftest import T0

# The example telegram of the DSMR 5.0.2 P1 Companion Standard (§6.12). Its printed CRC
# (EF2F) does not match its printed text - a known erratum of the document.
SPEC_EXAMPLE = (Path(__file__).parent / "fixtures" / "dsmr_5_0_2_spec_example.p1").read_bytes()
RECEIVED_MS = int(T0 * 1000)


def _resealed(raw: bytes) -> bytes:
    return seal(raw[: raw.rindex(b"!") + 1].decode("ascii"))


def test_spec_example_printed_crc_is_rejected() -> None:
    """The spec's example with its printed CRC fails the CRC check (the document's erratum)."""
    assert SPEC_EXAMPLE.endswith(b"!EF2F\r\n")
    with pytest.raises(FrameError, match="CRC"):
        decode_telegram(SPEC_EXAMPLE, RECEIVED_MS)


@pytest.mark.parametrize(
    ("metric", "unit", "kind", "value"),
    [
        ("energy_import_t1", "kWh", Kind.CUMULATIVE, 123456.789),  # 1-0:1.8.1
        ("energy_import_t2", "kWh", Kind.CUMULATIVE, 123456.789),  # 1-0:1.8.2
        ("energy_export_t1", "kWh", Kind.CUMULATIVE, 123456.789),  # 1-0:2.8.1
        ("energy_export_t2", "kWh", Kind.CUMULATIVE, 123456.789),  # 1-0:2.8.2
        ("power_import", "W", Kind.GAUGE, 1193.0),  # 1-0:1.7.0 01.193 kW
        ("power_export", "W", Kind.GAUGE, 0.0),  # 1-0:2.7.0
        ("gas", "m3", Kind.CUMULATIVE, 12785.123),  # 0-1:24.2.1
    ],
)
def test_spec_example_values(metric: str, unit: str, kind: Kind, value: float) -> None:
    """With a correct CRC the spec example decodes to the values the standard describes."""
    got = {m.metric: m for m in decode_telegram(_resealed(SPEC_EXAMPLE), RECEIVED_MS)}
    assert (got[metric].unit, got[metric].kind) == (unit, kind)
    assert got[metric].value == pytest.approx(value)


def test_gas_carries_its_own_capture_time() -> None:
    """Gas is stamped 2010-12-09 11:25:00 CET (its M-Bus capture), electricity at reception."""
    got = {m.metric: m for m in decode_telegram(_resealed(SPEC_EXAMPLE), RECEIVED_MS)}
    assert got["gas"].ts_ms == 1_291_890_300_000  # 2010-12-09T10:25:00Z
    assert got["energy_import_t1"].ts_ms == RECEIVED_MS


def test_simulated_telegram_decodes() -> None:
    """The generator's telegrams pass dsmr-parser's CRC check and carry the model's registers."""
    model = LoadModel(t0_s=T0)
    got = {m.metric: m.value for m in decode_telegram(make_telegram(model, T0 + 3600), RECEIVED_MS)}
    assert got["energy_import_t1"] + got["energy_import_t2"] == pytest.approx(
        model.import_kwh(T0 + 3600), abs=0.002
    )


def test_flipped_byte_fails_the_crc() -> None:
    """One altered digit in a register is caught by the CRC."""
    raw = make_telegram(LoadModel(t0_s=T0), T0)
    i = raw.index(b"1-0:1.8.1(") + 12
    bad = raw[:i] + (b"7" if raw[i : i + 1] != b"7" else b"8") + raw[i + 1 :]
    with pytest.raises(FrameError, match="CRC"):
        decode_telegram(bad, RECEIVED_MS)


@given(st.binary(max_size=300))
def test_crc_matches_dsmr_parser(data: bytes) -> None:
    """Our CRC-16/ARC equals dsmr-parser's implementation on any input."""
    text = data.decode("latin-1")
    assert crc16_arc(data) == TelegramParser.crc16(text)


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    """Any bytes either decode or raise DecodeError - never another exception."""
    with contextlib.suppress(DecodeError):
        decode_telegram(b"/" + data + b"!", RECEIVED_MS)


@given(st.sampled_from(list(DsmrSpec)), st.integers(0, 400), st.binary(min_size=1, max_size=3))
def test_mutated_telegrams_raise_only_decode_errors(spec: DsmrSpec, at: int, junk: bytes) -> None:
    """Telegrams with bytes replaced and a recomputed CRC never crash the decoder."""
    raw = make_telegram(LoadModel(t0_s=T0), T0)
    body = raw[: raw.rindex(b"!") + 1]
    at %= len(body) - 1
    mutated = body[:at] + junk + body[at + len(junk) :]
    with contextlib.suppress(DecodeError):
        decode_telegram(
            seal(mutated.decode("latin-1")) if mutated.isascii() else mutated, RECEIVED_MS, spec
        )


# dsmr-parser's DSMR 2.2 example telegram (no CRC; gas value on the line after 0-1:24.3.0)
DSMR_2_2_EXAMPLE = (
    b"/ISk5\\2MT382-1004\r\n\r\n0-0:96.1.1(00000000000000)\r\n1-0:1.8.1(00001.001*kWh)\r\n"
    b"1-0:1.8.2(00001.001*kWh)\r\n1-0:2.8.1(00001.001*kWh)\r\n1-0:2.8.2(00001.001*kWh)\r\n"
    b"0-0:96.14.0(0001)\r\n1-0:1.7.0(0001.01*kW)\r\n1-0:2.7.0(0000.00*kW)\r\n"
    b"0-0:17.0.0(0999.00*kW)\r\n0-0:96.3.10(1)\r\n0-0:96.13.1()\r\n0-0:96.13.0()\r\n"
    b"0-1:24.1.0(3)\r\n0-1:96.1.0(000000000000)\r\n"
    b"0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(00001.001)\r\n0-1:24.4.0(1)\r\n!\r\n"
)


def test_dsmr_2_2_telegram_without_crc() -> None:
    """A DSMR 2.2 telegram (no CRC) decodes with spec v2.2, gas included."""
    got = {m.metric: m.value for m in decode_telegram(DSMR_2_2_EXAMPLE, RECEIVED_MS, DsmrSpec.V2_2)}
    assert got["energy_import_t1"] == 1.001
    assert got["power_import"] == pytest.approx(1010.0)
    assert got["gas"] == 1.001


def test_dsmr_2_2_telegram_fails_the_v5_crc_requirement() -> None:
    """Read as DSMR 5, a telegram without CRC is rejected rather than trusted."""
    with pytest.raises(FrameError):
        decode_telegram(DSMR_2_2_EXAMPLE, RECEIVED_MS, DsmrSpec.V5)
