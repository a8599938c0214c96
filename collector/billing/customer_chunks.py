"""Walk every customer in chunks, one transaction per chunk (the progressive check and the
advance run share it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from collector.errors import ValidationFailed
from collector.storage import billing_store as store

__all__ = ["in_customer_chunks"]

T = TypeVar("T")
Conn = psycopg.Connection[Any]


def in_customer_chunks(
    conn: Conn, chunk_size: int, work: Callable[[list[int]], list[T]]
) -> list[T]:
    """Call ``work`` with each chunk of customer ids (ascending) inside its own transaction,
    so a chunk commits on its own; the results of every chunk, in order."""
    if not 1 <= chunk_size <= 10_000:
        raise ValidationFailed("chunk_size must be 1..10000")
    out: list[T] = []
    after = 0
    while True:
        with conn.transaction():
            ids = store.customer_ids(conn, after=after, limit=chunk_size)
            if not ids:
                return out
            out += work(ids)
        after = ids[-1]
