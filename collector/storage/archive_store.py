"""Retention and archive of ``readings`` partitions (plain PostgreSQL flavour).

A monthly partition ``readings_pYYYYMM`` may be archived when its month ended at least
``older_than`` ago (the correction horizon), no draft invoice still covers any of it (its
periods are billed), and no usage refresh is pending for it. Archiving, in ONE transaction:

1. lock the partition against writes, read every row (one ``array_agg`` per series);
2. write a Parquet file (zstd; delta-encoded columns, :mod:`collector.operations.archive_codec`)
   beside it as ``.tmp``, fsync, rename;
3. read the file back and compare it with the rows read, row for row and bit for bit, and the
   row count with ``count(*)`` under the same lock;
4. record it in ``readings_archive``, detach the partition and drop it.

Any failure rolls back: the partition stays attached, the file (if any) is removed.
:func:`read_archived` gives back the rows of archived months for given series and times; the
raw-readings API and the usage backfill use it where a range reaches into an archived month.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import psycopg
import pyarrow.parquet as pq
from psycopg import sql

from collector.errors import StorageError
from collector.operations.archive_codec import (
    SCHEMA,
    ArchiveRows,
    decode_block,
    encode_block,
    sort_rows,
)
from collector.storage.database import translate_errors
from collector.storage.usage_backfill import parse_series_arrays
from collector.storage.usage_store import COPY_HEADER

__all__ = [
    "ArchiveEntry",
    "Partition",
    "archivable_partitions",
    "archive_partition",
    "archived_entries",
    "list_archive",
    "read_archived",
    "run_archive",
]

Conn = psycopg.Connection[Any]
_PART_RE: Final = re.compile(r"^readings_p(\d{4})(\d{2})$")
_BLOCK_ROWS: Final = 1_000_000
_PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_WIRE_ROW: Final = np.dtype([("n", ">i2"), ("l_sid", ">i4"), ("sid", ">i8"), ("l_ts", ">i4"),
                             ("ts", ">i8"), ("l_v", ">i4"), ("value", ">f8")])


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    ts_from: datetime
    ts_to: datetime


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    partition: str
    ts_from: datetime
    ts_to: datetime
    path: str
    readings: int
    bytes: int
    sha256: str

    @property
    def bytes_per_reading(self) -> float:
        return self.bytes / self.readings if self.readings else 0.0


def _month_range(name: str) -> tuple[datetime, datetime] | None:
    m = _PART_RE.match(name)
    if not m:
        return None
    year, month = int(m[1]), int(m[2])
    lo = datetime(year, month, 1, tzinfo=UTC)
    hi = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return lo, hi


def _partitions(conn: Conn) -> list[Partition]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'readings'::regclass ORDER BY 1"
    ).fetchall()
    out = []
    for (name,) in rows:
        rng = _month_range(str(name))
        if rng:
            out.append(Partition(str(name), *rng))
    return out


def archivable_partitions(conn: Conn, now: datetime, older_than: timedelta) -> list[Partition]:
    """Monthly partitions whose month ended ``older_than`` before ``now``, with no draft
    invoice overlapping it and no pending usage refresh for it."""
    with translate_errors("archivable partitions"):
        flavour = conn.execute(
            "SELECT flavour FROM tally_schema_migrations WHERE version = 2").fetchone()
        if flavour is not None and flavour[0] == "timescale":
            raise StorageError(
                "archive works on the plain PostgreSQL schema's monthly partitions; on "
                "TimescaleDB use compression and add_retention_policy (docs/operations.md)")
        out = []
        for p in _partitions(conn):
            if p.ts_to > now - older_than:
                continue
            busy = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM invoices WHERE status = 'draft'"
                "  AND period_start < %s AND period_end > %s)"
                " OR EXISTS (SELECT 1 FROM usage_dirty WHERE ts_from < %s AND ts_to >= %s)",
                (p.ts_to, p.ts_from, p.ts_to, p.ts_from),
            ).fetchone()
            if busy and not busy[0]:
                out.append(p)
        return out


def _read_partition(conn: Conn, name: str) -> ArchiveRows:
    sids: list[np.ndarray[Any, Any]] = []
    ts: list[np.ndarray[Any, Any]] = []
    vals: list[np.ndarray[Any, Any]] = []
    query = sql.SQL(
        "COPY (SELECT series_id, array_agg(ts), array_agg(value) FROM {} GROUP BY series_id)"
        " TO STDOUT (FORMAT BINARY)").format(sql.Identifier(name))
    conn.execute("SET LOCAL work_mem = '512MB'")
    with conn.cursor() as cur, cur.copy(query) as cp:
        for data in cp:
            got = parse_series_arrays(data)
            if got is not None:
                sid, t, v = got
                sids.append(np.full(t.shape[0], sid, dtype=np.int64))
                ts.append(t)
                vals.append(v)
    if not sids:
        return ArchiveRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return sort_rows(ArchiveRows(np.concatenate(sids), np.concatenate(ts),
                                 np.concatenate(vals)))


def _write_file(rows: ArchiveRows, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    with pq.ParquetWriter(str(tmp), SCHEMA, compression="zstd", compression_level=9,
                          use_dictionary=["series_id"],  # type: ignore[arg-type]
                          ) as writer:
        for i in range(0, max(len(rows), 1), _BLOCK_ROWS):
            block = ArchiveRows(rows.series_id[i:i + _BLOCK_ROWS], rows.ts_us[i:i + _BLOCK_ROWS],
                                rows.value[i:i + _BLOCK_ROWS])
            writer.write_table(encode_block(block), row_group_size=_BLOCK_ROWS)
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)


def _read_file(path: Path, series: Sequence[int] | None = None) -> ArchiveRows:
    f = pq.ParquetFile(str(path))
    parts: list[ArchiveRows] = []
    wanted = None if series is None else np.asarray(sorted(set(series)), dtype=np.int64)
    for g in range(f.num_row_groups):
        if wanted is not None:
            stats = f.metadata.row_group(g).column(0).statistics
            if stats is not None and stats.has_min_max:
                lo, hi = int(stats.min), int(stats.max)  # type: ignore[arg-type]
                if not np.any((wanted >= lo) & (wanted <= hi)):
                    continue  # no wanted series in this block: not decoded
        block = decode_block(f.read_row_group(g))
        if wanted is not None:
            keep = np.isin(block.series_id, wanted)
            block = ArchiveRows(block.series_id[keep], block.ts_us[keep], block.value[keep])
        parts.append(block)
    if not parts:
        return ArchiveRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return ArchiveRows(np.concatenate([p.series_id for p in parts]),
                       np.concatenate([p.ts_us for p in parts]),
                       np.concatenate([p.value for p in parts]))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_count(conn: Conn, name: str, n: int) -> None:
    count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(name))).fetchone()
    if count is None or int(count[0]) != n:
        raise StorageError(f"archive {name}: read {n} rows of {count}")


def _check_file(path: Path, rows: ArchiveRows, name: str) -> None:
    if not _read_file(path).equals(rows):
        raise StorageError(f"archive {name}: the file does not read back equal")


def archive_partition(conn: Conn, part: Partition, directory: Path) -> ArchiveEntry:
    """Export, verify, record, detach and drop one partition (see the module doc)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = (directory / f"{part.name}.parquet").resolve()
    try:
        with translate_errors(f"archive {part.name}"), conn.transaction():
            conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(
                sql.Identifier(part.name)))
            rows = _read_partition(conn, part.name)
            _check_count(conn, part.name, len(rows))
            _write_file(rows, path)
            _check_file(path, rows, part.name)
            entry = ArchiveEntry(part.name, part.ts_from, part.ts_to, str(path), len(rows),
                                 path.stat().st_size, _sha256(path))
            conn.execute(
                "INSERT INTO readings_archive (partition, ts_from, ts_to, path, readings,"
                " bytes, sha256) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (entry.partition, entry.ts_from, entry.ts_to, entry.path, entry.readings,
                 entry.bytes, entry.sha256),
            )
            conn.execute(sql.SQL("ALTER TABLE readings DETACH PARTITION {}").format(
                sql.Identifier(part.name)))
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(part.name)))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return entry


def archived_entries(conn: Conn, ts_from: datetime | None = None,
                     ts_to: datetime | None = None) -> list[ArchiveEntry]:
    """Archived months overlapping ``[ts_from, ts_to]`` (all without bounds)."""
    with translate_errors("archived partitions"):
        if conn.execute("SELECT to_regclass('readings_archive')").fetchone() == (None,):
            return []
        rows = conn.execute(
            "SELECT partition, ts_from, ts_to, path, readings, bytes, sha256"
            " FROM readings_archive WHERE (%s::timestamptz IS NULL OR ts_to > %s)"
            " AND (%s::timestamptz IS NULL OR ts_from <= %s) ORDER BY ts_from",
            (ts_from, ts_from, ts_to, ts_to),
        ).fetchall()
    return [ArchiveEntry(str(r[0]), r[1], r[2], str(r[3]), int(r[4]), int(r[5]), str(r[6]))
            for r in rows]


def read_archived(conn: Conn, series: Sequence[int], ts_from: datetime,
                  ts_to: datetime) -> ArchiveRows:
    """Archived readings of ``series`` with ``ts_from <= ts <= ts_to``, by series and time."""
    parts = []
    lo = int((ts_from - _PG_EPOCH) / timedelta(microseconds=1))
    hi = int((ts_to - _PG_EPOCH) / timedelta(microseconds=1))
    for e in archived_entries(conn, ts_from, ts_to):
        try:
            rows = _read_file(Path(e.path), series)
        except OSError as exc:
            raise StorageError(f"archived readings of {e.partition} unreadable at {e.path}:"
                               f" {exc}") from exc
        keep = (rows.ts_us >= lo) & (rows.ts_us <= hi)
        parts.append(ArchiveRows(rows.series_id[keep], rows.ts_us[keep], rows.value[keep]))
    if not parts:
        return ArchiveRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return sort_rows(ArchiveRows(np.concatenate([p.series_id for p in parts]),
                                 np.concatenate([p.ts_us for p in parts]),
                                 np.concatenate([p.value for p in parts])))


def run_archive(dsn: str, now: datetime, older_than: timedelta, directory: Path, *,
                dry_run: bool = False) -> tuple[list[Partition], list[ArchiveEntry]]:
    """The CLI's entry: archive every archivable partition (or only list them)."""
    with translate_errors("archive"), psycopg.connect(dsn, autocommit=True) as conn:
        parts = archivable_partitions(conn, now, older_than)
        if dry_run:
            return parts, []
        return parts, [archive_partition(conn, p, directory) for p in parts]


def list_archive(dsn: str) -> list[ArchiveEntry]:
    with translate_errors("archive list"), psycopg.connect(dsn) as conn:
        return archived_entries(conn)


def restore_partition(dsn: str, partition: str) -> ArchiveEntry:
    """Attach an archived month again: the file is checked against its recorded sha256 and
    row count, loaded into a new ``readings_pYYYYMM`` (with the month's rows that arrived in
    ``readings_default`` meanwhile), attached, and its ``readings_archive`` row removed. The
    file is kept."""
    with translate_errors(f"restore {partition}"), psycopg.connect(dsn) as conn:
        entries = [e for e in archived_entries(conn) if e.partition == partition]
        if not entries:
            raise StorageError(f"restore: {partition} is not in readings_archive")
        e = entries[0]
        path = Path(e.path)
        if _sha256(path) != e.sha256:
            raise StorageError(f"restore: {path} does not match its recorded sha256")
        rows = _read_file(path)
        if len(rows) != e.readings:
            raise StorageError(f"restore: {path} holds {len(rows)} rows, {e.readings} recorded")
        with conn.transaction():
            name = sql.Identifier(partition)
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE readings INCLUDING DEFAULTS)").format(
                name))
            wire = np.empty(len(rows), dtype=_WIRE_ROW)
            wire["n"], wire["l_sid"], wire["l_ts"], wire["l_v"] = 3, 8, 8, 8
            wire["sid"], wire["ts"], wire["value"] = rows.series_id, rows.ts_us, rows.value
            copy = sql.SQL("COPY {} (series_id, ts, value) FROM STDIN (FORMAT BINARY)")
            with conn.cursor() as cur, cur.copy(copy.format(name)) as cp:
                cp.write(COPY_HEADER + wire.tobytes() + b"\xff\xff")
            conn.execute(sql.SQL(
                "WITH moved AS (DELETE FROM readings_default WHERE ts >= %s AND ts < %s"
                " RETURNING *) INSERT INTO {} SELECT * FROM moved").format(name),
                (e.ts_from, e.ts_to))
            conn.execute(sql.SQL(  # DDL takes no bind parameters: literals, quoted by psycopg
                "ALTER TABLE readings ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
            ).format(name, sql.Literal(e.ts_from), sql.Literal(e.ts_to)))
            conn.execute("DELETE FROM readings_archive WHERE partition = %s", (partition,))
        return e
