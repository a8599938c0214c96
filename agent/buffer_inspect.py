"""Read a buffer file's figures without writing to it (``tally-agent status``; safe while the
agent runs: a read-only SQLite connection sees the last committed state, WAL included)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from agent.buffer_port import BufferStats
from agent.errors import BufferError_


def inspect_buffer(path: Path) -> BufferStats:
    """The buffer figures of the SQLite file at ``path``."""
    if not path.exists():
        raise BufferError_(f"no buffer file at {path}")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            counters = {str(k): int(v) for k, v in db.execute("SELECT name, value FROM counters")}
            depth, unbatched = db.execute(
                "SELECT count(*), count(*) - count(batch_seq) FROM readings").fetchone()
            pending = db.execute("SELECT count(*) FROM batches").fetchone()[0]
            oldest = db.execute("SELECT ts_ms FROM readings ORDER BY id LIMIT 1").fetchone()
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
    except sqlite3.Error as exc:
        raise BufferError_(f"cannot read buffer {path}: {exc}") from exc
    return BufferStats(
        depth=int(depth), unbatched=int(unbatched), pending_batches=int(pending),
        oldest_ts_ms=int(oldest[0]) if oldest else None, dropped=counters.get("dropped", 0),
        refused=counters.get("refused", 0), used_bytes=(int(pages) - int(free)) * int(page_size),
        next_seq=counters.get("next_seq", 0),
    )
