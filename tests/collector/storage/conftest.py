"""A migrated database with a pool and a ReadingStore over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.storage.database import Pool, open_pool
from collector.storage.ingest_store import ReadingStore
from collector.storage.migrate import migrate


@pytest.fixture
def pool(pg_url: str) -> Iterator[Pool]:
    migrate(pg_url, use_timescale=False)
    p = open_pool(pg_url, min_size=1, max_size=2)
    p.wait(10)
    yield p
    p.close()


@pytest.fixture
def store(pool: Pool) -> ReadingStore:
    return ReadingStore(pool)
