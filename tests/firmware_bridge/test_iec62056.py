"""IEC 62056-21 mode C: data block framing, BCC, OBIS lines, and the serial exchange over a pty."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import SourceError
from agent.protocol import Kind
from firmware_bridge.errors import DecodeError, FrameError
from firmware_bridge.iec62056.readout import (
    ETX,
    STX,
    DataSet,
    bcc,
    parse_data_block,
    parse_identification,
    to_measurements,
)
from firmware_bridge.iec62056.source import IecReadoutSource
from firmware_bridge.simulators.iec62056 import IecMeterSimulator, make_data_block
from firmware_bridge.simulators.load import LoadModel
from tests.firmware_bridge.conftest import T0, FakeClock

TS = int(T0 * 1000)


def _frame(lines: list[str]) -> bytes:
    body = ("\r\n".join(lines) + "\r\n").encode() + bytes([ETX])
    return bytes([STX]) + body + bytes([bcc(body)])


def test_bcc_is_xor_after_stx_through_etx() -> None:
    """BCC of 'A','B',ETX is 0x41^0x42^0x03."""
    assert bcc(b"AB\x03") == 0x41 ^ 0x42 ^ 0x03


@pytest.mark.parametrize(
    ("line", "metric", "unit", "kind", "value"),
    [
        ("1-0:1.8.0(012345.678*kWh)", "energy_import", "kWh", Kind.CUMULATIVE, 12345.678),
        ("1.8.0(012345.678*kWh)", "energy_import", "kWh", Kind.CUMULATIVE, 12345.678),
        ("1-0:1.8.0*255(000001.5*kWh)", "energy_import", "kWh", Kind.CUMULATIVE, 1.5),
        ("1-0:1.8.1(000100.000*kWh)", "energy_import_t1", "kWh", Kind.CUMULATIVE, 100.0),
        ("1-0:2.8.0(000042.001*kWh)", "energy_export", "kWh", Kind.CUMULATIVE, 42.001),
        ("1-0:1.7.0(01.250*kW)", "power_import", "kW", Kind.GAUGE, 1.25),
        ("1-0:32.7.0(230.4*V)", "voltage_l1", "V", Kind.GAUGE, 230.4),
        ("1-0:31.7.0(-001.20*A)", "current_l1", "A", Kind.GAUGE, -1.2),
    ],
)
def test_obis_lines(line: str, metric: str, unit: str, kind: Kind, value: float) -> None:
    """Each OBIS data line maps to its metric, unit and kind."""
    [m] = to_measurements(parse_data_block(_frame([line, "!"])), TS)
    assert (m.metric, m.unit, m.kind) == (metric, unit, kind)
    assert m.value == pytest.approx(value)


def test_unmapped_and_text_lines_are_ignored() -> None:
    """Serial numbers, dates and unknown codes produce no measurement."""
    frame = _frame(["0.0.0(12345678)", "0.9.2(1250101)", "C.1.0(ABC)", "1.8.0(5*kWh)", "!"])
    assert [m.metric for m in to_measurements(parse_data_block(frame), TS)] == ["energy_import"]


def test_several_datasets_on_one_line() -> None:
    """A line may hold several data sets; each is parsed."""
    got = parse_data_block(_frame(["1.8.1(1*kWh)1.8.2(2*kWh)", "!"]))
    assert got == [DataSet("1.8.1", "1", "kWh"), DataSet("1.8.2", "2", "kWh")]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "BCC"),
        (lambda f: b"X" + f[1:], "STX"),
        (lambda f: f[:-2] + b"\x04" + f[-1:], "ETX"),
    ],
)
def test_bad_frames(mutate: object, fragment: str) -> None:
    """Wrong BCC, missing STX or ETX raise FrameError."""
    frame = _frame(["1.8.0(1*kWh)", "!"])
    with pytest.raises(FrameError, match=fragment):
        parse_data_block(mutate(frame))  # type: ignore[operator]


def test_missing_end_mark() -> None:
    """A block without the '!' end line is incomplete."""
    with pytest.raises(FrameError, match="end mark"):
        parse_data_block(_frame(["1.8.0(1*kWh)"]))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"/ISK5MT174-0001\r\n", ("ISK", 9600, "MT174-0001")),
        (b"/LGZ4ZMD3104100\r\n", ("LGZ", 4800, "ZMD3104100")),
        (b"/EMH6\\2eHZ-W\r\n", ("EMH", 19200, "eHZ-W")),
    ],
)
def test_identification(line: bytes, expected: tuple[str, int, str]) -> None:
    """The identification message gives the manufacturer, the baud rate offered and the type."""
    assert parse_identification(line) == expected


@given(st.binary(max_size=200))
def test_random_blocks_raise_only_decode_errors(data: bytes) -> None:
    """Random bytes (with valid framing and BCC or not) never raise anything but DecodeError."""
    for frame in (data, bytes([STX]) + data + bytes([ETX, bcc(data + bytes([ETX]))])):
        with contextlib.suppress(DecodeError):
            to_measurements(parse_data_block(frame), TS)


def test_simulated_block_roundtrip() -> None:
    """The simulator's data block decodes to the model's registers."""
    model = LoadModel(t0_s=T0)
    got = {
        m.metric: m.value for m in to_measurements(parse_data_block(make_data_block(model, T0)), TS)
    }
    assert got["energy_import"] == pytest.approx(1234.5)
    assert got["power_import"] == pytest.approx(1.5)


async def test_mode_c_readout_over_pty(clock: FakeClock) -> None:
    """Sign-on, acknowledgement and data block travel over a real pty (serial stack)."""
    sim = IecMeterSimulator(LoadModel(t0_s=T0), clock=clock).start()
    source = IecReadoutSource("optical", sim.path, timeout_s=5)
    try:
        readings = {r.metric: r for r in await source.read(clock.now())}
    finally:
        sim.close()
    assert readings["energy_import"].value == pytest.approx(1234.5)
    assert readings["energy_import"].kind is Kind.CUMULATIVE
    assert sim.readouts == 1


async def test_bcc_error_over_pty_is_flagged(clock: FakeClock) -> None:
    """A block with a wrong BCC fails the poll with SourceError naming the BCC."""
    sim = IecMeterSimulator(LoadModel(t0_s=T0), clock=clock, corrupt_bcc=True).start()
    source = IecReadoutSource("optical", sim.path, timeout_s=5)
    try:
        with pytest.raises(SourceError, match="BCC"):
            await source.read(clock.now())
    finally:
        sim.close()


async def test_mute_meter_times_out(clock: FakeClock) -> None:
    """No answer to the sign-on is a SourceError after the timeout."""
    sim = IecMeterSimulator(LoadModel(t0_s=T0), clock=clock)  # never started: silent
    source = IecReadoutSource("optical", sim.path, timeout_s=0.5)
    try:
        with pytest.raises(SourceError, match="no complete answer"):
            await source.read(clock.now())
    finally:
        sim.close()
