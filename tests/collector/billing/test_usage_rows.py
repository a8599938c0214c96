"""Billing's bulk usage read (usage_15m_daily via binary COPY) against the usage_15m rows."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from collector.errors import StorageError
from collector.storage import billing_usage_store as usage_store
from collector.storage.billing_usage_store import load_usage_rows
from tests.collector.billing.conftest import make_series, put_usage, utc

Conn = psycopg.Connection[Any]


def test_rows_match_usage_15m_inside_the_range(conn: Conn) -> None:
    """Exactly the usage_15m rows of the asked series with buckets in [start, end) come back."""
    a, b, other = make_series(conn, "dev-a"), make_series(conn, "dev-b"), make_series(conn, "x")
    put_usage(conn, a, utc(2026, 3, 1, 22), utc(2026, 3, 3, 1), 0.5, estimated=0.25, readings=3)
    put_usage(conn, b, utc(2026, 3, 2, 10, 15), utc(2026, 3, 2, 11), 2.0)
    put_usage(conn, other, utc(2026, 3, 2), utc(2026, 3, 3), 9.0)
    start, end = utc(2026, 3, 1, 23), utc(2026, 3, 2, 23, 45)
    rows = load_usage_rows(conn, [a, b], start, end)
    expected = conn.execute(
        "SELECT series_id, extract(epoch FROM bucket)::bigint, quantity, estimated,"
        " reading_count FROM usage_15m WHERE series_id = ANY(%s) AND bucket >= %s"
        " AND bucket < %s",
        ([a, b], start, end),
    ).fetchall()
    got = set(
        zip(
            rows.series.tolist(),
            rows.bucket.tolist(),
            rows.quantity.tolist(),
            rows.estimated.tolist(),
            rows.readings.tolist(),
            strict=True,
        )
    )
    assert got == {tuple(r) for r in expected}
    assert len(rows) == 99 + 3  # a: 23:00 to 23:45 next day = 99 quarter hours; b: 3


def test_series_read_in_batches_give_the_same_rows(
    conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Series beyond one query's batch are read by further queries, in the same order and with
    nothing lost or repeated (batches of one series here)."""
    ids = [make_series(conn, f"dev-{k}") for k in range(3)]
    for k, sid in enumerate(ids):
        put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 3, 3), 0.25 * (k + 1), readings=k + 1)
    start, end = utc(2026, 3, 1, 6), utc(2026, 3, 2, 18)
    whole = load_usage_rows(conn, ids, start, end)
    monkeypatch.setattr(usage_store, "_SERIES_PER_QUERY", 1)
    batched = load_usage_rows(conn, ids, start, end)
    assert len(whole) == 3 * 36 * 4
    for name in ("series", "bucket", "quantity", "estimated", "readings"):
        assert getattr(batched, name).tolist() == getattr(whole, name).tolist()
    assert sorted(set(batched.series.tolist())) == sorted(ids)


def test_no_packed_days_gives_no_rows(conn: Conn) -> None:
    sid = make_series(conn, "dev-empty")
    assert len(load_usage_rows(conn, [sid], utc(2026, 3, 1), utc(2026, 4, 1))) == 0


def _copy_stream(q_length: int, e_length: int = 768) -> bytes:
    """A binary COPY stream of one usage_15m_daily row with these quantity/estimated sizes."""
    field = [(8).to_bytes(4, "big") + (7).to_bytes(8, "big")]  # series 7
    field.append((8).to_bytes(4, "big") + (0).to_bytes(8, "big"))  # 2000-01-01
    field.append(q_length.to_bytes(4, "big") + bytes(q_length))
    field.append(e_length.to_bytes(4, "big") + bytes(e_length))
    field.append((384).to_bytes(4, "big") + bytes(384))
    row = (5).to_bytes(2, "big") + b"".join(field)
    return b"PGCOPY\n\xff\r\n\x00" + bytes(8) + row + b"\xff\xff"


def test_packed_rows_are_decoded_from_a_binary_copy() -> None:
    """A well-formed stream gives its record: series, day, 96 quarter hours."""
    rows = usage_store._decode_copy(_copy_stream(768))
    assert rows["series"].tolist() == [7]
    assert rows["q"].shape == (1, 96)


@pytest.mark.parametrize(("q_length", "e_length"), [(760, 768), (776, 768), (760, 776)])
def test_a_resized_packed_column_is_an_error_not_a_misread(q_length: int, e_length: int) -> None:
    """A column that is not 96 values is refused, even when the row keeps its total size
    (never decoded at the wrong offsets)."""
    with pytest.raises(StorageError, match="packed layout"):
        usage_store._decode_copy(_copy_stream(q_length, e_length))
