"""Pure Modbus decoding: data types, word order, block planning (fixtures: Eastron maps)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import ModbusTcpClient

from agent.protocol import Kind
from firmware_bridge.errors import DecodeError
from firmware_bridge.modbus.map_files import load_map
from firmware_bridge.modbus.registers import (
    Block,
    DataType,
    Point,
    RegisterMap,
    WordOrder,
    decode_block,
    decode_value,
    encode_value,
    plan_blocks,
)

BIG, LITTLE = WordOrder.BIG, WordOrder.LITTLE


@pytest.mark.parametrize(
    ("words", "dtype", "order", "expected"),
    [
        ([0x4049, 0x0FDB], DataType.FLOAT32, BIG, struct.unpack(">f", b"\x40\x49\x0f\xdb")[0]),
        ([0x0FDB, 0x4049], DataType.FLOAT32, LITTLE, struct.unpack(">f", b"\x40\x49\x0f\xdb")[0]),
        ([0x449A, 0x5000], DataType.FLOAT32, BIG, 1234.5),  # 1234.5 as IEEE-754 0x449A5000
        ([0xFFFF, 0xFFFE], DataType.INT32, BIG, -2),
        ([0xFFFE, 0xFFFF], DataType.INT32, LITTLE, -2),
        ([0x0001, 0x0000], DataType.UINT32, BIG, 65536),
        ([0x0000, 0x0001], DataType.UINT32, LITTLE, 65536),
        ([0x8000], DataType.INT16, BIG, -32768),
        ([0xFFFF], DataType.UINT16, BIG, 65535),
        ([0, 0, 0, 1], DataType.INT64, BIG, 1),
        ([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], DataType.INT64, BIG, -1),
        ([1, 0, 0, 0], DataType.UINT64, LITTLE, 1),
        ([0x0001, 0, 0, 0], DataType.UINT64, BIG, 2**48),
    ],
)
def test_decode_value_table(
    words: list[int], dtype: DataType, order: WordOrder, expected: float
) -> None:
    """Each data type and word order decodes to the documented number."""
    assert decode_value(words, dtype, order) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("dtype", "pm"),
    [
        (DataType.FLOAT32, ModbusTcpClient.DATATYPE.FLOAT32),
        (DataType.INT32, ModbusTcpClient.DATATYPE.INT32),
        (DataType.UINT32, ModbusTcpClient.DATATYPE.UINT32),
        (DataType.INT64, ModbusTcpClient.DATATYPE.INT64),
        (DataType.UINT64, ModbusTcpClient.DATATYPE.UINT64),
        (DataType.INT16, ModbusTcpClient.DATATYPE.INT16),
        (DataType.UINT16, ModbusTcpClient.DATATYPE.UINT16),
    ],
)
@given(data=st.data())
def test_decode_agrees_with_pymodbus(dtype: DataType, pm: object, data: st.DataObject) -> None:
    """Our decoder gives what pymodbus' own converter gives, in both word orders."""
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=dtype.words, max_size=dtype.words))
    order = data.draw(st.sampled_from([BIG, LITTLE]))
    theirs = ModbusTcpClient.convert_from_registers(words, pm, word_order=order.value)  # type: ignore[arg-type]
    ours = decode_value(words, dtype, order)
    assert isinstance(theirs, int | float)
    if theirs != theirs:  # NaN from float32 patterns
        assert ours != ours
    else:
        assert ours == float(theirs)


@given(
    value=st.integers(-(2**31), 2**31 - 1),
    order=st.sampled_from([BIG, LITTLE]),
)
def test_int32_roundtrip(value: int, order: WordOrder) -> None:
    """encode_value then decode_value is the identity for int32."""
    assert decode_value(encode_value(value, DataType.INT32, order), DataType.INT32, order) == value


@given(words=st.lists(st.integers(-5, 0x1FFFF), max_size=6), dtype=st.sampled_from(list(DataType)))
def test_decode_value_raises_only_decode_error(words: list[int], dtype: DataType) -> None:
    """Wrong lengths or out-of-range words raise DecodeError and nothing else."""
    with contextlib.suppress(DecodeError):
        decode_value(words, dtype, BIG)


def _point(
    metric: str, address: int, dtype: DataType = DataType.FLOAT32, function: int = 4
) -> Point:
    return Point(metric, address, function, dtype, BIG, 1.0, "W", Kind.GAUGE)


@given(
    addresses=st.sets(st.integers(0, 400).map(lambda a: a * 2), min_size=1, max_size=40),
    max_gap=st.integers(0, 20),
    max_block=st.integers(2, 125),
)
def test_plan_blocks_covers_every_point_once(
    addresses: set[int], max_gap: int, max_block: int
) -> None:
    """Every point lands in exactly one block, inside it, and no block exceeds max_block."""
    points = tuple(_point(f"p{a}", a) for a in sorted(addresses))
    blocks = plan_blocks(RegisterMap("t", points, max_gap=max_gap, max_block=max_block))
    placed = [p for b in blocks for p in b.points]
    assert sorted(p.metric for p in placed) == sorted(p.metric for p in points)
    for b in blocks:
        assert b.count <= max_block
        assert all(b.address <= p.address and p.end <= b.address + b.count for p in b.points)


def test_plan_blocks_splits_by_function_code() -> None:
    """Holding and input registers are never read in the same request."""
    rmap = RegisterMap("t", (_point("a", 0, function=3), _point("b", 2, function=4)), max_gap=10)
    assert [(b.function, b.address, b.count) for b in plan_blocks(rmap)] == [(3, 0, 2), (4, 2, 2)]


def test_decode_block_applies_scale_and_kind() -> None:
    """A scaled uint32 Wh counter becomes kWh with the point's kind and unit."""
    p = Point("energy", 10, 3, DataType.UINT32, BIG, 0.001, "kWh", Kind.CUMULATIVE)
    block = Block(3, 10, 2, (p,))
    [m] = decode_block(block, [0x0001, 0x86A0], 1_700_000_000_000)  # 100000 Wh
    assert (m.metric, m.unit, m.kind, m.value) == ("energy", "kWh", Kind.CUMULATIVE, 100.0)


def test_decode_block_rejects_short_answer() -> None:
    """A device answering fewer registers than asked is a DecodeError naming the address."""
    block = Block(4, 0, 4, (_point("a", 0), _point("b", 2)))
    with pytest.raises(DecodeError) as info:
        decode_block(block, [0, 0], 1_700_000_000_000)
    assert info.value.offset == 0


def test_decode_block_rejects_nan() -> None:
    """A float32 NaN register is a DecodeError, not a reading."""
    block = Block(4, 0, 2, (_point("a", 0),))
    with pytest.raises(DecodeError):
        decode_block(block, [0x7FC0, 0x0000], 1_700_000_000_000)


# Eastron SDM630 Modbus protocol, input registers (30001-based register → 0-based address)
@pytest.mark.parametrize(
    ("metric", "register", "unit", "kind"),
    [
        ("voltage_l1", 30001, "V", Kind.GAUGE),
        ("current_l1", 30007, "A", Kind.GAUGE),
        ("power_l1", 30013, "W", Kind.GAUGE),
        ("power", 30053, "W", Kind.GAUGE),
        ("frequency", 30071, "Hz", Kind.GAUGE),
        ("energy_import", 30073, "kWh", Kind.CUMULATIVE),
        ("energy_export", 30075, "kWh", Kind.CUMULATIVE),
        ("energy_total", 30343, "kWh", Kind.CUMULATIVE),
    ],
)
def test_sdm630_map_matches_eastron_table(
    metric: str, register: int, unit: str, kind: Kind
) -> None:
    """The shipped SDM630 map has Eastron's addresses: input registers, float32, high word first."""
    points = {p.metric: p for p in load_map("sdm630").points}
    p = points[metric]
    assert (p.address, p.function, p.dtype, p.word_order) == (
        register - 30001,
        4,
        DataType.FLOAT32,
        BIG,
    )
    assert (p.unit, p.kind) == (unit, kind)


@pytest.mark.parametrize(
    ("metric", "register"),
    [
        ("voltage", 30001),
        ("current", 30007),
        ("power", 30013),
        ("energy_import", 30073),
        ("energy_export", 30075),
        ("energy_total", 30343),
    ],
)
def test_sdm120_map_matches_eastron_table(metric: str, register: int) -> None:
    """The shipped SDM120 map has Eastron's input register addresses."""
    points = {p.metric: p for p in load_map("sdm120").points}
    assert points[metric].address == register - 30001
    assert points[metric].function == 4


def test_sdm630_is_read_in_three_requests() -> None:
    """The SDM630 map needs three reads (0x00-0x11, 0x34-0x55, 0x156-0x159), not one per value."""
    blocks = plan_blocks(load_map("sdm630"))
    assert [(b.address, b.count) for b in blocks] == [(0x00, 18), (0x34, 34), (0x156, 4)]
