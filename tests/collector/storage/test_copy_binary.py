"""Binary COPY encoding of reading rows (pure)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.storage.copy_binary import COPY_HEADER, encode_readings_copy

_ROW = struct.Struct(">hiqiqid")


def _decode(data: bytes) -> list[tuple[int, int, float]]:
    assert data.startswith(COPY_HEADER)
    assert data.endswith(b"\xff\xff")
    body = data[len(COPY_HEADER):-2]
    rows = []
    for off in range(0, len(body), _ROW.size):
        n, l1, sid, l2, ts, l3, val = _ROW.unpack_from(body, off)
        assert (n, l1, l2, l3) == (3, 8, 8, 8)
        rows.append((sid, ts, val))
    return rows


def test_header_is_the_postgresql_signature() -> None:
    """The stream starts with PGCOPY signature, zero flags and no header extension."""
    data = encode_readings_copy(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    assert data == b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\xff\xff"


@given(
    st.lists(
        st.tuples(
            st.integers(1, 2**62),
            st.integers(946_684_800_000, 4_102_444_800_000),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=50,
    )
)
def test_rows_round_trip_exactly(rows: list[tuple[int, int, float]]) -> None:
    """Every row decodes back to its series id, microseconds since 2000 and exact float."""
    sids = np.array([r[0] for r in rows], dtype=np.int64)
    ts = np.array([r[1] for r in rows], dtype=np.int64)
    vals = np.array([r[2] for r in rows], dtype=np.float64)
    decoded = _decode(encode_readings_copy(sids, ts, vals))
    assert decoded == [(s, (t - 946_684_800_000) * 1000, v) for s, t, v in rows]


def test_unequal_columns_are_refused() -> None:
    """Columns of different lengths raise ValueError."""
    with pytest.raises(ValueError, match="lengths"):
        encode_readings_copy(np.zeros(2, np.int64), np.zeros(1, np.int64), np.zeros(2))
