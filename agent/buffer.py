"""Durable SQLite buffer (aiosqlite, WAL): the agent's only copy of a reading until the collector
has confirmed it committed (end-to-end acknowledgement).

Every method that changes the file runs in one explicit transaction, serialised by a lock (one
connection is shared by the poll loops, the batcher and the publish loop). sqlite3 errors are
translated once, here: SQLITE_FULL / ENOSPC -> ``DiskFullError`` (transaction rolled back,
nothing half-written; the caller retries later), anything else -> ``BufferError_``.

``synchronous=FULL``: in WAL mode NORMAL may lose the last commits on power loss (the WAL is
only fsynced at checkpoints), and a reading counts as taken once it is committed here. FULL
costs one fsync per commit; commits are per poll and per batch (1000 readings), not per reading.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Final

import aiosqlite

from agent.batching import Row, SeriesKey, series_from_rows
from agent.buffer_port import BufferLimits, BufferStats, FullPolicy, SealedBatch, initial_seq
from agent.errors import BufferError_, BufferFullError, DiskFullError
from agent.private_files import PRIVATE_MODE, make_private
from agent.protocol import MAX_SERIES_PER_BATCH, Reading

# readings are normalised: (meter, metric, unit, kind) live once in `series`; a reading row is
# four numbers, which halves the file and makes reading a batch back ~2x cheaper. The view
# `readings_full` shows the denormalised shape for people inspecting a buffer with sqlite3.
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS series(
    id INTEGER PRIMARY KEY,
    meter TEXT NOT NULL, metric TEXT NOT NULL, unit TEXT NOT NULL, kind TEXT NOT NULL,
    UNIQUE(meter, metric, unit, kind));
CREATE TABLE IF NOT EXISTS readings(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    series_id INTEGER NOT NULL REFERENCES series(id),
    ts_ms INTEGER NOT NULL, value REAL NOT NULL, batch_seq INTEGER);
CREATE VIEW IF NOT EXISTS readings_full AS
    SELECT r.id, s.meter, s.metric, s.unit, s.kind, r.ts_ms, r.value, r.batch_seq
    FROM readings r JOIN series s ON s.id = r.series_id;
CREATE TABLE IF NOT EXISTS batches(
    seq INTEGER PRIMARY KEY, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,
    n INTEGER NOT NULL, sealed_ms INTEGER NOT NULL, sent_ms INTEGER);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS skipped(seq INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_SQLITE_FULL: Final = 13
_INSERT_ROWS: Final = 300  # readings per INSERT statement: 900 parameters (SQLite allows 999+)


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == _SQLITE_FULL) or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


class SqliteBuffer:
    """The ``ReadingBuffer`` on a SQLite file. Open with ``await SqliteBuffer.open(...)``."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, limits: BufferLimits) -> None:
        self._conn = conn
        self._path = path
        self._limits = limits
        self._lock = asyncio.Lock()
        self._rows = 0
        self._unbatched = 0
        self._pending: dict[int, tuple[int, int]] = {}  # seq -> (first_id, last_id), in order
        self._sent: dict[int, int] = {}  # seq -> first sent (ms): PUBACKed, not yet confirmed
        self._skipped: list[int] = []  # seqs of batches dropped unconfirmed (drop_oldest)
        self._page_size = 4096
        self._series: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._last_id = 0  # id of the newest reading ever appended (ids are never reused)

    @classmethod
    async def open(
        cls, path: Path, *, device_id: str, now_ms: int, limits: BufferLimits | None = None,
        connect: Callable[..., aiosqlite.Connection] = aiosqlite.connect,
    ) -> SqliteBuffer:
        """Open (creating if needed) the buffer of ``device_id``; refuses another device's file.

        ``connect``: how the connection is made (``agent.sqlite_threads`` shares a few threads
        among the buffers of many agents in one process; aiosqlite's default is a thread each).
        """
        try:
            # Owner-only from the start; SQLite gives the -wal/-shm files the same mode.
            make_private(path)
            for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                if side.exists():
                    side.chmod(PRIVATE_MODE)
            conn = await connect(path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise BufferError_(f"cannot open buffer {path}: {exc}") from exc
        buf = cls(conn, path, limits or BufferLimits())
        try:
            await buf._init(device_id, now_ms)
        except BaseException:
            await conn.close()
            raise
        return buf

    @asynccontextmanager
    async def _tx(self, what: str, *, durable: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; ``durable=False`` commits without fsync (see ``ack``)."""
        async with self._lock:
            try:
                if not durable:
                    await self._conn.execute("PRAGMA synchronous=NORMAL")
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
                if not durable:
                    await self._conn.execute("PRAGMA synchronous=FULL")
            except (sqlite3.Error, OSError) as exc:
                await self._rollback()
                if not durable:
                    with suppress(sqlite3.Error, OSError):
                        await self._conn.execute("PRAGMA synchronous=FULL")
                if _is_disk_full(exc):
                    raise DiskFullError(f"buffer {what}: disk full ({exc})") from exc
                raise BufferError_(f"buffer {what} failed: {exc}") from exc
            except BaseException:
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        with suppress(sqlite3.Error, OSError, ValueError):
            if self._conn.in_transaction:
                await self._conn.execute("ROLLBACK")

    async def _init(self, device_id: str, now_ms: int) -> None:
        try:
            await self._conn.execute("PRAGMA journal_mode=WAL")
            await self._conn.execute("PRAGMA synchronous=FULL")
            wal = wal_budget(self._limits.max_bytes)
            # checkpoint once the WAL holds `wal` bytes and truncate it back to that size after:
            # the WAL never grows much past its budget (SQLite's default is ~4 MiB, unbounded)
            await self._conn.execute(f"PRAGMA journal_size_limit = {wal}")
            await self._conn.execute(f"PRAGMA wal_autocheckpoint = {max(wal // 4096, 16)}")
            # one transaction: a new file costs one fsync for its schema, not one per table
            await self._conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
            async with self._conn.execute("PRAGMA table_info(batches)") as cur:
                columns = {str(r[1]) for r in await cur.fetchall()}
            if "sent_ms" not in columns:  # a buffer written before end-to-end acknowledgement
                await self._conn.execute("ALTER TABLE batches ADD COLUMN sent_ms INTEGER")
            async with self._conn.execute("PRAGMA page_size") as cur:
                row = await cur.fetchone()
                self._page_size = int(row[0]) if row else 4096
        except (sqlite3.Error, OSError) as exc:
            raise BufferError_(f"cannot initialise buffer {self._path}: {exc}") from exc
        async with self._tx("init") as db:
            await db.execute(
                "INSERT OR IGNORE INTO state(key, value) VALUES ('agent.device_id', ?)",
                (device_id,),
            )
            first = initial_seq(now_ms)
            fresh = await self._scalar(db, "SELECT value FROM counters WHERE name = 'next_seq'")
            seeds = [("next_seq", first), ("dropped", 0), ("refused", 0), ("sealed_upto_id", 0),
                     ("dropped_batches", 0)]
            if fresh is None:  # a file made before first_seq was kept does not know it
                seeds.append(("first_seq", first))
            for name, value in seeds:
                await db.execute(
                    "INSERT OR IGNORE INTO counters(name, value) VALUES (?, ?)", (name, value)
                )
            owner = await self._scalar(db, "SELECT value FROM state WHERE key='agent.device_id'")
            self._rows = int(await self._scalar(db, "SELECT count(*) FROM readings") or 0)
            self._unbatched = int(
                await self._scalar(db, "SELECT count(*) FROM readings WHERE batch_seq IS NULL")
                or 0
            )
            self._last_id = int(await self._scalar(
                db, "SELECT seq FROM sqlite_sequence WHERE name = 'readings'") or 0)
            for sid, meter, metric, unit, kind in await db.execute_fetchall(
                "SELECT id, meter, metric, unit, kind FROM series"
            ):
                key = (str(meter), str(metric), str(unit), str(kind))
                self._series[key] = int(sid)
                self._keys[int(sid)] = key
            async with db.execute(
                "SELECT seq, first_id, last_id, sent_ms FROM batches ORDER BY seq"
            ) as cur:
                heads = list(await cur.fetchall())
            self._pending = {int(r[0]): (int(r[1]), int(r[2])) for r in heads}
            self._sent = {int(r[0]): int(r[3]) for r in heads if r[3] is not None}
            self._skipped = [int(r[0]) for r in
                             await db.execute_fetchall("SELECT seq FROM skipped ORDER BY seq")]
        if owner != device_id:
            raise BufferError_(
                f"buffer {self._path} belongs to device {owner!r}, not {device_id!r}; "
                "point buffer.path at another file"
            )

    @staticmethod
    async def _scalar(db: aiosqlite.Connection, sql: str, params: Sequence[object] = ()) -> Any:
        rows = list(await db.execute_fetchall(sql, params))  # one call to the SQLite thread
        return rows[0][0] if rows else None

    # -- port ------------------------------------------------------------------------------

    @property
    def unbatched(self) -> int:
        return self._unbatched

    @property
    def last_id(self) -> int:
        """Id of the newest reading appended: readings get ever larger ids, never reused."""
        return self._last_id

    def pending(self) -> list[int]:
        """Seqs of sealed, unacknowledged batches, oldest first."""
        return list(self._pending)  # dict keeps insertion (= seq) order

    async def append(self, readings: Sequence[Reading]) -> None:
        """Commit readings; BufferFullError (refuse_new) or DiskFullError if they can't be."""
        if not readings:
            return
        keyed = [((r.meter, r.metric, r.unit, r.kind.value), r.ts_ms, r.value) for r in readings]
        new_keys = list(dict.fromkeys(k for k, _, _ in keyed if k not in self._series))
        refused = False
        added: dict[SeriesKey, int] = {}
        dropped = 0
        gone: list[tuple[int, int]] = []
        async with self._tx("append") as db:
            excess = await self._excess(db, len(keyed))
            if excess > 0 and self._limits.policy is FullPolicy.DROP_OLDEST:
                # the oldest readings are in sealed batches: whole batches go first (a batch is
                # a fixed set), recorded as skipped so the collector knows the gap is deliberate
                gone = await self._drop_batches(db, excess)
                dropped = sum(n for _, n in gone)
                if dropped < excess:
                    cur = await db.execute(
                        "DELETE FROM readings WHERE id IN (SELECT id FROM readings "
                        "WHERE id > (SELECT value FROM counters WHERE name = 'sealed_upto_id') "
                        "AND batch_seq IS NULL ORDER BY id LIMIT ?)",
                        (excess - dropped,),
                    )
                    unbatched_dropped = max(cur.rowcount, 0)
                    dropped += unbatched_dropped
                await self._bump(db, "dropped", dropped)
                await self._bump(db, "dropped_batches", len(gone))
                refused = dropped < excess
            elif excess > 0:
                refused = True
            if refused:
                await self._bump(db, "refused", len(keyed))
            else:
                for key in new_keys:
                    cur = await db.execute(
                        "INSERT INTO series(meter, metric, unit, kind) VALUES (?, ?, ?, ?)", key
                    )
                    assert cur.lastrowid is not None
                    added[key] = cur.lastrowid
                sid = {**self._series, **added}
                rows = [(sid[k], t, v) for k, t, v in keyed]
                for at in range(0, len(rows), _INSERT_ROWS):
                    # one multi-row INSERT per chunk: its cursor knows the last id, no query
                    chunk = rows[at:at + _INSERT_ROWS]
                    placeholders = ", ".join(("(?, ?, ?)",) * len(chunk))
                    cur = await db.execute(
                        "INSERT INTO readings(series_id, ts_ms, value) VALUES "  # noqa: S608 - placeholders only; every value is a parameter
                        + placeholders,
                        [x for row in chunk for x in row],
                    )
                assert cur.lastrowid is not None
                last_id = cur.lastrowid
                taken = Counter(k[0] for k, _, _ in keyed)  # per meter, for reconciliation
                await db.executemany(
                    "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) "
                    "DO UPDATE SET value = value + excluded.value",
                    [(f"taken:{meter}", n) for meter, n in taken.items()],
                )
        self._rows -= dropped
        self._unbatched -= dropped - sum(n for _, n in gone)
        for seq, _ in gone:
            del self._pending[seq]
            self._sent.pop(seq, None)
            self._skipped.append(seq)
        if refused:
            raise BufferFullError(
                f"buffer full ({self._rows} readings); {len(keyed)} new reading(s) refused"
            )
        self._series.update(added)
        self._keys.update((v, k) for k, v in added.items())
        self._rows += len(keyed)
        self._unbatched += len(keyed)
        self._last_id = last_id

    async def _drop_batches(self, db: aiosqlite.Connection, excess: int) -> list[tuple[int, int]]:
        """Delete the oldest sealed batches holding at least ``excess`` readings (or all of
        them); returns (seq, readings deleted) of each, and records the seqs as skipped."""
        victims: list[tuple[int, int, int]] = []
        total = 0
        for seq, (first, last) in self._pending.items():
            if total >= excess:
                break
            victims.append((seq, first, last))
            total += last - first + 1  # an upper bound; the exact count comes from DELETE
        out: list[tuple[int, int]] = []
        for seq, first, last in victims:
            cur = await db.execute(
                "DELETE FROM readings WHERE id BETWEEN ? AND ? AND batch_seq = ?",
                (first, last, seq),
            )
            out.append((seq, max(cur.rowcount, 0)))
            if sum(n for _, n in out) >= excess:
                break
        if out:
            await db.executemany("DELETE FROM batches WHERE seq = ?", [(s,) for s, _ in out])
            await db.executemany("INSERT OR IGNORE INTO skipped(seq) VALUES (?)",
                                 [(s,) for s, _ in out])
        return out

    def skipped(self) -> list[int]:
        """Seqs of batches dropped before the collector confirmed them, not yet reported."""
        return list(self._skipped)

    async def forget_skipped(self, seqs: Sequence[int]) -> None:
        """The collector has recorded these skipped seqs: stop reporting them."""
        done = set(seqs) & set(self._skipped)
        if not done:
            return
        async with self._tx("forget_skipped", durable=False) as db:
            await db.executemany("DELETE FROM skipped WHERE seq = ?", [(s,) for s in done])
        self._skipped = [s for s in self._skipped if s not in done]

    async def _excess(self, db: aiosqlite.Connection, incoming: int) -> int:
        """How many stored readings must go for ``incoming`` more to fit (0 if they fit)."""
        excess = 0
        if self._limits.max_readings is not None:
            excess = max(excess, self._rows + incoming - self._limits.max_readings)
        if self._limits.max_bytes is not None and self._rows:
            used = await self._used_bytes(db)
            if used >= self._limits.max_bytes:
                per_row = max(used // self._rows, 1)
                over = used - self._limits.max_bytes
                excess = max(excess, incoming + over // per_row + max(self._rows // 100, 1))
        return excess

    async def _used_bytes(self, db: aiosqlite.Connection) -> int:
        """Pages in use plus the WAL file: both take room on the disk."""
        rows = list(await db.execute_fetchall(
            "SELECT page_count, freelist_count FROM pragma_page_count, pragma_freelist_count"))
        pages, free = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
        try:
            wal = os.stat(f"{self._path}-wal").st_size
        except OSError:
            wal = 0
        return (pages - free) * self._page_size + wal

    @staticmethod
    async def _bump(db: aiosqlite.Connection, name: str, by: int) -> None:
        if by:
            await db.execute("UPDATE counters SET value = value + ? WHERE name = ?", (by, name))

    async def seal(
        self, max_readings: int, now_ms: int, *, max_batches: int = 1,
        lane: tuple[int, int] | None = None,
    ) -> list[SealedBatch]:
        """Assign the oldest unbatched readings to new batches (up to ``max_batches``).

        ``lane=(after_id, upto_id)`` takes only unbatched readings with ``after_id < id <=
        upto_id`` (the runner seals fresh readings before an older backlog this way).
        One transaction: read the rows, mark them with their batch's seq, record each batch's
        id range, advance the seq counter. Returns the sealed batches (what ``load`` gives).
        """
        if max_readings < 1 or max_batches < 1:
            raise ValueError("max_readings and max_batches must be >= 1")
        sealed: list[SealedBatch] = []
        async with self._tx("seal") as db:
            counters: dict[str, int] = {
                str(k): int(v) for k, v in await db.execute_fetchall(
                    "SELECT name, value FROM counters "
                    "WHERE name IN ('next_seq', 'sealed_upto_id')")
            }
            seq = int(counters["next_seq"])
            # every id <= sealed_upto_id is batched or gone: the scan starts after it (rows
            # above it may already be batched, in batches sealed from a lane)
            upto_before = int(counters["sealed_upto_id"])
            after, upto = lane if lane is not None else (upto_before, self._last_id)
            rows: list[Row] = list(await db.execute_fetchall(  # type: ignore[arg-type]
                "SELECT id, series_id, ts_ms, value FROM readings WHERE id > ? AND id <= ?"
                " AND batch_seq IS NULL ORDER BY id LIMIT ?",
                (max(after, upto_before), upto, max_readings * max_batches),
            ))
            heads: list[tuple[int, int, int, int, int]] = []
            chunks: list[list[Row]] = []
            start = 0
            while start < len(rows) and len(heads) < max_batches:
                chunk = _cut_series(rows[start:start + max_readings])
                heads.append((seq, chunk[0][0], chunk[-1][0], len(chunk), now_ms))
                chunks.append(chunk)
                start += len(chunk)
                seq += 1
            if heads:
                await db.executemany(
                    "UPDATE readings SET batch_seq = ? WHERE id BETWEEN ? AND ?"
                    " AND batch_seq IS NULL",
                    [(h[0], h[1], h[2]) for h in heads],
                )
                await db.executemany(
                    "INSERT INTO batches(seq, first_id, last_id, n, sealed_ms) "
                    "VALUES (?, ?, ?, ?, ?)",
                    heads,
                )
                moved = [(seq, "next_seq")]
                if after <= upto_before:  # sealed from the oldest unbatched reading on
                    moved.append((heads[-1][2], "sealed_upto_id"))
                await db.executemany("UPDATE counters SET value = ? WHERE name = ?", moved)
        self._pending.update((h[0], (h[1], h[2])) for h in heads)
        self._unbatched -= sum(len(c) for c in chunks)
        # columnar series are built after the commit, outside the lock
        for head, chunk in zip(heads, chunks, strict=True):
            sealed.append(SealedBatch(head[0], now_ms, series_from_rows(chunk, self._keys)))
        return sealed

    async def load(self, seq: int) -> SealedBatch:
        """The readings of sealed batch ``seq``: identical every time until it is acked."""
        try:
            async with self._lock:
                head = next(iter(await self._conn.execute_fetchall(
                    "SELECT first_id, last_id, sealed_ms FROM batches WHERE seq = ?", (seq,)
                )), None)
                if head is None:
                    raise BufferError_(f"batch {seq} is not in the buffer")
                rows = await self._conn.execute_fetchall(
                    "SELECT id, series_id, ts_ms, value FROM readings "
                    "WHERE id BETWEEN ? AND ? AND batch_seq = ? ORDER BY id",
                    (int(head[0]), int(head[1]), seq),
                )
        except (sqlite3.Error, OSError) as exc:
            raise BufferError_(f"buffer load of batch {seq} failed: {exc}") from exc
        return SealedBatch(seq, int(head[2]), series_from_rows(list(rows), self._keys))  # type: ignore[arg-type]

    def sent(self) -> dict[int, int]:
        """Sent, unconfirmed batches: seq -> when first sent (ms), as kept in the file."""
        return dict(self._sent)

    async def mark_sent(self, seqs: Sequence[int], now_ms: int) -> None:
        """Record that the broker has these batches (PUBACK); they stay until confirmed.

        Committed without fsync, like ``ack``: losing the mark only loses the age shown in the
        status; the batch itself is sealed and durable either way.
        """
        new = [seq for seq in dict.fromkeys(seqs) if seq in self._pending and seq not in self._sent]
        if not new:
            return
        async with self._tx("mark_sent", durable=False) as db:
            await db.executemany("UPDATE batches SET sent_ms = ? WHERE seq = ?",
                                 [(now_ms, seq) for seq in new])
        self._sent.update((seq, now_ms) for seq in new)

    async def ack(self, seqs: Sequence[int]) -> None:
        """Delete confirmed batches and their readings (one transaction).

        Committed without fsync: if power fails before the WAL reaches the disk, the batch is
        merely re-sent with the same seq and readings, and the collector drops the duplicate.
        Appends and seals stay fully synchronous: a reading must not vanish, and a seq that
        was published must never be reassigned to other readings.
        """
        ranges = [(seq, *self._pending[seq]) for seq in dict.fromkeys(seqs)
                  if seq in self._pending]
        if not ranges:
            return
        async with self._tx("ack", durable=False) as db:
            before = db.total_changes
            await db.executemany(
                "DELETE FROM readings WHERE id BETWEEN ? AND ? AND batch_seq = ?",
                [(first, last, seq) for seq, first, last in ranges],
            )
            removed = db.total_changes - before
            await db.executemany("DELETE FROM batches WHERE seq = ?",
                                 [(seq,) for seq, _, _ in ranges])
        for seq, _, _ in ranges:
            del self._pending[seq]
            self._sent.pop(seq, None)
        self._rows -= removed

    async def stats(self) -> BufferStats:
        try:
            async with self._lock:
                db = self._conn
                oldest = await self._scalar(db, "SELECT ts_ms FROM readings ORDER BY id LIMIT 1")
                counters = dict(
                    (str(k), int(v))
                    for k, v in await db.execute_fetchall("SELECT name, value FROM counters")
                )
                used = await self._used_bytes(db)
        except (sqlite3.Error, OSError) as exc:
            raise BufferError_(f"buffer stats failed: {exc}") from exc
        return BufferStats(
            depth=self._rows,
            unbatched=self._unbatched,
            pending_batches=len(self._pending),
            oldest_ts_ms=int(str(oldest)) if oldest is not None else None,
            dropped=counters.get("dropped", 0),
            refused=counters.get("refused", 0),
            dropped_batches=counters.get("dropped_batches", 0),
            skipped_unreported=len(self._skipped),
            used_bytes=used,
            next_seq=counters.get("next_seq", 0),
            unconfirmed_batches=len(self._sent),
            oldest_sent_ms=min(self._sent.values(), default=None),
            taken_by_meter=tuple(sorted((k.removeprefix("taken:"), v)
                                        for k, v in counters.items() if k.startswith("taken:"))),
            first_seq=counters.get("first_seq"),
        )

    async def load_state(self, key: str) -> str | None:
        try:
            async with self._lock:
                value = await self._scalar(
                    self._conn, "SELECT value FROM state WHERE key = ?", (key,)
                )
        except (sqlite3.Error, OSError) as exc:
            raise BufferError_(f"buffer state read failed: {exc}") from exc
        return None if value is None else str(value)

    async def save_state(self, key: str, value: str) -> None:
        async with self._tx("save_state") as db:
            await db.execute(
                "INSERT INTO state(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def close(self) -> None:
        """Checkpoint the WAL and close; safe to call twice."""
        async with self._lock:
            with suppress(sqlite3.Error, OSError, ValueError):
                await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            with suppress(sqlite3.Error, OSError, ValueError):
                await self._conn.close()


def wal_budget(max_bytes: int | None) -> int:
    """Bytes the WAL may hold before a checkpoint: 1/8 of ``max_bytes``, 64 KiB to 1 MiB."""
    if max_bytes is None:
        return 1 << 20
    return min(max(max_bytes // 8, 64 * 1024), 1 << 20)


def _cut_series(chunk: list[Row]) -> list[Row]:
    """The longest prefix of ``chunk`` with at most MAX_SERIES_PER_BATCH distinct series."""
    if len({r[1] for r in chunk}) <= MAX_SERIES_PER_BATCH:
        return chunk
    seen: set[int] = set()
    for i, row in enumerate(chunk):
        seen.add(row[1])
        if len(seen) > MAX_SERIES_PER_BATCH:
            return chunk[:i]
    return chunk
