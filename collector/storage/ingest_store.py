"""ReadingStore: writes one ingest flush (batches, statuses, dead letters) in one transaction.

Per flush: (0) with ``registered_only``, batches of devices that are not registered and active
become dead letters and their statuses are ignored, (a) resolve series ids (cached in memory;
unknown series inserted with ON CONFLICT), (b) insert the batch keys ``(device_id, seq)`` with
the readings' digest and learn which are new — a batch seen before (in an earlier flush or twice
in this one) is skipped if its readings are the same, and kept in ``batch_conflicts`` with its
reason if they differ, (c) binary-COPY the readings of the new batches, (d) queue
``usage_dirty`` ranges, (e) count the new batches and record the confirmed seqs per device,
(f) store status updates, conflicts, dead letters and skipped seqs, commit.

Lock order: two collectors on one shared subscription flush batches of the same devices at
the same time, so their transactions lock the same per-device rows. Each table with such rows
(``series``, ``batches``, ``device_ingest``, ``device_status``, ``batch_skips``) is written by
one statement per flush, over its rows sorted by key, and the statements run in that order of
tables; every flush thus locks rows in one global order and two flushes never deadlock (one
waits for the other). A new statement that locks per-device rows must keep to this: one
statement per table per flush, rows sorted, in the order above.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import psycopg

from agent.protocol import Batch
from collector.ingest.acks import confirmed_upto
from collector.ingest.batch_identity import batch_digest
from collector.ingest.messages import (
    DeadLetter,
    DecodedBatch,
    FlushOutcome,
    FlushPlan,
    StatusUpdate,
)

from .copy_binary import encode_readings_copy
from .database import Pool, translate_errors

__all__ = ["DURABLE_LIMIT", "ReadingStore", "SeriesKey", "unique_batches"]

SeriesKey = tuple[str, str, str]  # (device_id, meter, metric)
DURABLE_LIMIT: Final = 512  # seqs listed per device in one acknowledgement
_COPY_SQL: Final = "COPY readings (series_id, ts, value) FROM STDIN (FORMAT BINARY)"


@dataclass(frozen=True, slots=True)
class _SeriesInfo:
    series_id: int
    unit: str
    kind: str


def unique_batches(batches: tuple[DecodedBatch, ...]) -> tuple[list[DecodedBatch], int]:
    """The first copy of each ``(device, seq)`` in a flush, sorted by key, and how many repeats."""
    seen: dict[tuple[str, int], DecodedBatch] = {}
    for item in batches:
        seen.setdefault((item.batch.device, item.batch.seq), item)
    return [seen[k] for k in sorted(seen)], len(batches) - len(seen)


def _keys(rejected: list[DeadLetter], plan: FlushPlan) -> set[tuple[str, int]]:
    """(device, seq) of the batches the store dead-lettered (never duplicates)."""
    bad = {id(d.payload) for d in rejected}
    return {(b.batch.device, b.batch.seq) for b in plan.batches if id(b.payload) in bad}


def _clean(text: str) -> str:
    return text.replace("\x00", "\\x00")


class ReadingStore:
    """The ingest adapter over PostgreSQL (implements ``collector.ingest.ports.IngestStore``)."""

    def __init__(
        self, pool: Pool, *, connection_timeout_s: float = 5.0, registered_only: bool = False
    ) -> None:
        self._pool = pool
        self._timeout = connection_timeout_s
        self._registered_only = registered_only
        self._series: dict[SeriesKey, _SeriesInfo] = {}

    @property
    def cached_series(self) -> int:
        return len(self._series)

    def write(self, plan: FlushPlan) -> FlushOutcome:
        """Store the plan atomically; raises StorageUnavailable/StorageError and stores nothing."""
        batches, repeats = unique_batches(plan.batches)
        digests = {id(b): batch_digest(b.batch) for b in plan.batches}
        resolved: dict[SeriesKey, _SeriesInfo] = {}  # series first seen in this flush
        with (
            translate_errors("ingest flush"),
            self._pool.connection(timeout=self._timeout) as conn,
            conn.transaction(),
        ):
            statuses = plan.statuses
            untrusted: list[DeadLetter] = []
            if self._registered_only:
                batches, untrusted, statuses = _only_registered(conn, batches, statuses)
            resolved = self._resolve_series(conn, batches)
            series = ChainMap(resolved, self._series)
            accepted, rejected = _check_series(batches, series)
            new = self._insert_batch_keys(conn, accepted, digests)
            new_batches = [b for b in accepted if (b.batch.device, b.batch.seq) in new]
            conflicts = _conflicts_in_flush(plan.batches, digests) + _conflicts_with_stored(
                conn, [b for b in accepted if (b.batch.device, b.batch.seq) not in new], digests
            )
            readings = self._copy_readings(conn, new_batches, series)
            durable = self._durable_seqs(conn, plan.ack_from)
            self._update_device_ingest(conn, new_batches, plan.ack_from, durable)
            self._insert_statuses(conn, statuses)
            self._insert_conflicts(conn, conflicts, digests)
            rejected = [*untrusted, *rejected]
            self._insert_dead_letters(conn, (*plan.dead_letters, *rejected))
            self._record_skips(conn, accepted)
        self._series.update(resolved)
        duplicates = [(b.batch.device, b.batch.seq) for b in plan.batches]
        stored = {(b.batch.device, b.batch.seq) for b in new_batches}
        conflicting = {(c.item.batch.device, c.item.batch.seq) for c in conflicts}
        return FlushOutcome(
            new_batches=len(new_batches),
            duplicate_batches=repeats + len(accepted) - len(new_batches) - len(conflicts),
            readings=readings,
            statuses=len(statuses),
            dead_letters=len(plan.dead_letters) + len(rejected),
            rejected=tuple(rejected),
            conflicts=len(conflicts),
            duplicates=tuple(sorted(
                set(duplicates) - stored - conflicting - _keys(rejected, plan))),
            conflicting=tuple(sorted(conflicting)),
            durable=tuple(sorted(durable.items())),
        )

    @staticmethod
    def _insert_conflicts(
        conn: psycopg.Connection[tuple[object, ...]], conflicts: list[_Conflict],
        digests: Mapping[int, bytes],
    ) -> None:
        if not conflicts:
            return
        items = [c.item for c in conflicts]
        conn.execute(
            "INSERT INTO batch_conflicts (device_id, seq, received_at, topic, payload,"
            " reading_count, digest, stored_digest, reason)"
            " SELECT d, s, to_timestamp(t::double precision / 1000), o, p, n, g, sg, r"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::bytea[],"
            " %s::int[], %s::bytea[], %s::bytea[], %s::text[]) AS x(d, s, t, o, p, n, g, sg, r)",
            (
                [i.batch.device for i in items], [i.batch.seq for i in items],
                [i.received_ms for i in items], [_clean(i.topic) for i in items],
                [i.payload for i in items], [i.batch.reading_count for i in items],
                [digests[id(i)] for i in items], [c.stored_digest for c in conflicts],
                [c.reason for c in conflicts],
            ),
        )

    @staticmethod
    def _record_skips(
        conn: psycopg.Connection[tuple[object, ...]], batches: list[DecodedBatch]
    ) -> None:
        """Seqs the agents report as dropped unsent (``skipped`` in the envelope)."""
        keys = sorted({(b.batch.device, seq) for b in batches
                       for lo, hi in b.batch.skipped for seq in range(lo, hi + 1)})
        if not keys:
            return
        conn.execute(
            "INSERT INTO batch_skips (device_id, seq)"
            " SELECT d, s FROM unnest(%s::text[], %s::bigint[]) AS x(d, s)"
            " ON CONFLICT DO NOTHING",
            ([d for d, _ in keys], [s for _, s in keys]),
        )

    @staticmethod
    def _durable_seqs(
        conn: psycopg.Connection[tuple[object, ...]], floors: tuple[tuple[str, int], ...]
    ) -> dict[str, tuple[int, ...]]:
        """Per device: its stored seqs from the floor up (at most DURABLE_LIMIT), ascending."""
        if not floors:
            return {}
        rows = conn.execute(
            "SELECT x.d, b.seq FROM unnest(%s::text[], %s::bigint[]) AS x(d, f)"
            " CROSS JOIN LATERAL (SELECT seq FROM batches WHERE device_id = x.d AND seq >= x.f"
            " ORDER BY seq LIMIT %s) b ORDER BY x.d, b.seq",
            ([d for d, _ in floors], [f for _, f in floors], DURABLE_LIMIT),
        ).fetchall()
        out: dict[str, list[int]] = {d: [] for d, _ in floors}
        for device, seq in rows:
            out[str(device)].append(int(seq))  # type: ignore[call-overload]
        return {d: tuple(v) for d, v in out.items()}

    def _resolve_series(
        self, conn: psycopg.Connection[tuple[object, ...]], batches: list[DecodedBatch]
    ) -> dict[SeriesKey, _SeriesInfo]:
        wanted: dict[SeriesKey, tuple[str, str, int]] = {}
        for item in batches:
            for s in item.batch.series:
                key = (item.batch.device, s.meter, s.metric)
                if key not in self._series:
                    wanted.setdefault(key, (s.unit, s.kind.value, item.received_ms))
        found: dict[SeriesKey, _SeriesInfo] = {}
        if not wanted:
            return found
        keys = sorted(wanted)
        cols = list(zip(*keys, strict=True))
        conn.execute(
            "INSERT INTO series (device_id, meter, metric, unit, kind, first_seen)"
            " SELECT d, m, q, u, k, to_timestamp(t::double precision / 1000)"
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
            " %s::bigint[]) AS x(d, m, q, u, k, t)"
            " ON CONFLICT (device_id, meter, metric) DO NOTHING",
            (
                list(cols[0]), list(cols[1]), list(cols[2]),
                [wanted[k][0] for k in keys], [wanted[k][1] for k in keys],
                [wanted[k][2] for k in keys],
            ),
        )
        rows = conn.execute(
            "SELECT s.series_id, s.device_id, s.meter, s.metric, s.unit, s.kind FROM series s"
            " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS x(d, m, q)"
            " ON s.device_id = x.d AND s.meter = x.m AND s.metric = x.q",
            (list(cols[0]), list(cols[1]), list(cols[2])),
        ).fetchall()
        for sid, dev, meter, metric, unit, kind in rows:
            found[(str(dev), str(meter), str(metric))] = _SeriesInfo(int(sid), str(unit), str(kind))  # type: ignore[call-overload]
        return found

    @staticmethod
    def _insert_batch_keys(
        conn: psycopg.Connection[tuple[object, ...]], batches: list[DecodedBatch],
        digests: Mapping[int, bytes],
    ) -> set[tuple[str, int]]:
        if not batches:
            return set()
        rows = conn.execute(
            "INSERT INTO batches (device_id, seq, received_at, reading_count, digest)"
            " SELECT d, s, to_timestamp(t::double precision / 1000), n, g"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::int[], %s::bytea[])"
            " AS x(d, s, t, n, g)"
            " ON CONFLICT (device_id, seq) DO NOTHING RETURNING device_id, seq",
            (
                [b.batch.device for b in batches],
                [b.batch.seq for b in batches],
                [b.received_ms for b in batches],
                [b.batch.reading_count for b in batches],
                [digests[id(b)] for b in batches],
            ),
        ).fetchall()
        return {(str(d), int(s)) for d, s in rows}  # type: ignore[call-overload]

    @staticmethod
    def _update_device_ingest(
        conn: psycopg.Connection[tuple[object, ...]], batches: list[DecodedBatch],
        floors: tuple[tuple[str, int], ...], durable: dict[str, tuple[int, ...]],
    ) -> None:
        """Count the new batches and record the confirmed seqs, per device, in one statement
        over the devices sorted by id (see the lock order in the module's docstring).

        A device that only has a confirmed seq is updated if it has a row, never inserted.
        """
        counts: dict[str, tuple[int, int, int, int, int]] = {}  # n, readings, lo, hi, last ms
        for b in batches:
            n, r, lo, hi, t = counts.get(b.batch.device, (0, 0, b.batch.seq, b.batch.seq, 0))
            counts[b.batch.device] = (n + 1, r + b.batch.reading_count, min(lo, b.batch.seq),
                                      max(hi, b.batch.seq), max(t, b.received_ms))
        tops = {d: top for d, f in floors
                if (top := confirmed_upto(f, durable.get(d, ()))) is not None}
        devices = sorted(counts.keys() | tops.keys())
        if not devices:
            return
        none = (0, 0, 0, 0, 0)
        rows = [counts.get(d, none) for d in devices]
        conn.execute(
            "INSERT INTO device_ingest AS di (device_id, batches, readings, first_seq, last_seq,"
            " last_seen, confirmed_seq, confirmed_at)"
            " SELECT d, n, r, f, l, to_timestamp(t::double precision / 1000), c,"
            " CASE WHEN c IS NULL THEN NULL ELSE now() END"
            " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],"
            " %s::bigint[], %s::bigint[]) AS x(d, n, r, f, l, t, c)"
            " WHERE n > 0 OR EXISTS (SELECT 1 FROM device_ingest e WHERE e.device_id = x.d)"
            " ON CONFLICT (device_id) DO UPDATE SET batches = di.batches + EXCLUDED.batches,"
            " readings = di.readings + EXCLUDED.readings,"
            " first_seq = CASE WHEN EXCLUDED.batches > 0"
            " THEN least(di.first_seq, EXCLUDED.first_seq) ELSE di.first_seq END,"
            " last_seq = CASE WHEN EXCLUDED.batches > 0"
            " THEN greatest(di.last_seq, EXCLUDED.last_seq) ELSE di.last_seq END,"
            " last_seen = CASE WHEN EXCLUDED.batches > 0"
            " THEN greatest(di.last_seen, EXCLUDED.last_seen) ELSE di.last_seen END,"
            " confirmed_seq = greatest(di.confirmed_seq, EXCLUDED.confirmed_seq),"
            " confirmed_at = coalesce(EXCLUDED.confirmed_at, di.confirmed_at)",
            (
                devices, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                [r[3] for r in rows], [r[4] for r in rows], [tops.get(d) for d in devices],
            ),
        )

    @staticmethod
    def _copy_readings(
        conn: psycopg.Connection[tuple[object, ...]],
        batches: list[DecodedBatch],
        series: Mapping[SeriesKey, _SeriesInfo],
    ) -> int:
        ids: list[npt.NDArray[np.int64]] = []
        ts: list[npt.NDArray[np.int64]] = []
        vals: list[npt.NDArray[np.float64]] = []
        ranges: dict[int, tuple[int, int]] = {}
        for item in batches:
            for s in item.batch.series:
                sid = series[(item.batch.device, s.meter, s.metric)].series_id
                ids.append(np.full(len(s), sid, dtype=np.int64))
                ts.append(np.frombuffer(s.ts_ms, dtype=np.int64))
                vals.append(np.frombuffer(s.values, dtype=np.float64))
                lo, hi = min(s.ts_ms), max(s.ts_ms)
                old = ranges.get(sid)
                ranges[sid] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
        if not ids:
            return 0
        data = encode_readings_copy(np.concatenate(ids), np.concatenate(ts), np.concatenate(vals))
        with conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
            copy.write(data)
        sids = sorted(ranges)
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to)"
            " SELECT s, to_timestamp(a::double precision / 1000),"
            " to_timestamp(b::double precision / 1000)"
            " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS x(s, a, b)",
            (sids, [ranges[s][0] for s in sids], [ranges[s][1] for s in sids]),
        )
        return sum(len(a) for a in ids)

    @staticmethod
    def _insert_statuses(
        conn: psycopg.Connection[tuple[object, ...]], statuses: tuple[StatusUpdate, ...]
    ) -> None:
        latest: dict[str, StatusUpdate] = {}
        for st in statuses:
            if st.device not in latest or latest[st.device].as_of_ms <= st.as_of_ms:
                latest[st.device] = st
        if not latest:
            return
        items = [latest[d] for d in sorted(latest)]
        # Judged by the document's own time: a redelivered old (retained) status never
        # replaces a newer one, and keeps its old ``as_of``.
        conn.execute(
            "INSERT INTO device_status (device_id, received_at, state, buffer_depth, payload,"
            " as_of)"
            " SELECT d, to_timestamp(t::double precision / 1000), s, b, p::jsonb,"
            " to_timestamp(a::double precision / 1000)"
            " FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bigint[], %s::text[],"
            " %s::bigint[]) AS x(d, t, s, b, p, a)"
            " ON CONFLICT (device_id) DO UPDATE SET received_at = EXCLUDED.received_at,"
            " state = EXCLUDED.state, buffer_depth = EXCLUDED.buffer_depth,"
            # a status without the agent's counters (the last will, an older agent) keeps the
            # last counters reported, for `tally-collector reconcile`
            " payload = CASE WHEN EXCLUDED.payload ? 'reconciliation'"
            " OR NOT device_status.payload ? 'reconciliation' THEN EXCLUDED.payload"
            " ELSE EXCLUDED.payload || jsonb_build_object("
            " 'reconciliation', device_status.payload -> 'reconciliation',"
            " 'buffer', device_status.payload -> 'buffer')"
            " END, as_of = EXCLUDED.as_of"
            " WHERE device_status.as_of <= EXCLUDED.as_of",
            (
                [s.device for s in items], [s.received_ms for s in items],
                [s.state for s in items], [s.buffer_depth for s in items],
                [s.document for s in items], [s.as_of_ms for s in items],
            ),
        )

    @staticmethod
    def _insert_dead_letters(
        conn: psycopg.Connection[tuple[object, ...]], letters: tuple[DeadLetter, ...]
    ) -> None:
        if not letters:
            return
        conn.execute(
            "INSERT INTO dead_letters (received_at, topic, payload, reason, field, payload_size,"
            " payload_sha256)"
            " SELECT to_timestamp(t::double precision / 1000), o, p, r, f, n, h"
            " FROM unnest(%s::bigint[], %s::text[], %s::bytea[], %s::text[], %s::text[],"
            " %s::bigint[], %s::bytea[]) AS x(t, o, p, r, f, n, h)",
            (
                [d.received_ms for d in letters], [_clean(d.topic) for d in letters],
                [d.kept_payload for d in letters], [_clean(d.reason) for d in letters],
                [_clean(d.field) if d.field is not None else None for d in letters],
                [d.payload_size for d in letters], [d.payload_sha256 for d in letters],
            ),
        )


def _check_series(
    batches: list[DecodedBatch], series: Mapping[SeriesKey, _SeriesInfo]
) -> tuple[list[DecodedBatch], list[DeadLetter]]:
    """Split batches into those whose series match the registered unit and kind, and the rest."""
    accepted: list[DecodedBatch] = []
    rejected: list[DeadLetter] = []
    for item in batches:
        problem = _series_mismatch(item.batch, series)
        if problem is None:
            accepted.append(item)
        else:
            reason, field = problem
            rejected.append(DeadLetter(item.topic, item.payload, reason, field, item.received_ms))
    return accepted, rejected


def _series_mismatch(
    batch: Batch, series: Mapping[SeriesKey, _SeriesInfo]
) -> tuple[str, str] | None:
    for s in batch.series:
        info = series[(batch.device, s.meter, s.metric)]
        if info.unit != s.unit or info.kind != s.kind.value:
            return (
                f"series {batch.device}/{s.meter}/{s.metric} is registered as"
                f" unit={info.unit} kind={info.kind}; batch {batch.seq} has"
                f" unit={s.unit} kind={s.kind.value}",
                "unit" if info.unit != s.unit else "kind",
            )
    return None


@dataclass(frozen=True, slots=True)
class _Conflict:
    item: DecodedBatch
    stored_digest: bytes | None
    reason: str


def _conflicts_in_flush(
    batches: tuple[DecodedBatch, ...], digests: Mapping[int, bytes]
) -> list[_Conflict]:
    """Later copies of a key in one flush whose readings differ from the first copy's."""
    first: dict[tuple[str, int], DecodedBatch] = {}
    out: list[_Conflict] = []
    for item in batches:
        key = (item.batch.device, item.batch.seq)
        kept = first.setdefault(key, item)
        if kept is not item and digests[id(kept)] != digests[id(item)]:
            out.append(_Conflict(item, digests[id(kept)],
                                 f"batch {key[1]} of {key[0]} arrived twice in one flush with "
                                 "different readings; the first copy was stored"))
    return out


def _conflicts_with_stored(
    conn: psycopg.Connection[tuple[object, ...]], seen: list[DecodedBatch],
    digests: Mapping[int, bytes],
) -> list[_Conflict]:
    """Batches whose key is already stored with different readings (not a redelivery)."""
    if not seen:
        return []
    rows = conn.execute(
        "SELECT b.device_id, b.seq, b.digest, b.reading_count FROM batches b"
        " JOIN unnest(%s::text[], %s::bigint[]) AS x(d, s) ON b.device_id = x.d AND b.seq = x.s",
        ([i.batch.device for i in seen], [i.batch.seq for i in seen]),
    ).fetchall()
    stored: dict[tuple[str, int], tuple[bytes | None, int]] = {
        (str(d), int(q)): (bytes(g) if g is not None else None, int(n))  # type: ignore[call-overload]
        for d, q, g, n in rows
    }
    out: list[_Conflict] = []
    for item in seen:
        digest, count = stored[(item.batch.device, item.batch.seq)]
        differs = (digest != digests[id(item)]) if digest is not None else (
            count != item.batch.reading_count)
        if differs:
            out.append(_Conflict(item, digest,
                                 f"batch {item.batch.seq} of {item.batch.device} is already "
                                 "stored with different readings; this copy was not counted"))
    return out


def _only_registered(
    conn: psycopg.Connection[tuple[object, ...]], batches: list[DecodedBatch],
    statuses: tuple[StatusUpdate, ...],
) -> tuple[list[DecodedBatch], list[DeadLetter], tuple[StatusUpdate, ...]]:
    """Batches of registered, active devices; dead letters for the others; statuses of
    registered devices only (those of unknown devices are ignored)."""
    devices = sorted({b.batch.device for b in batches} | {s.device for s in statuses})
    if not devices:
        return batches, [], statuses
    rows = conn.execute(
        "SELECT device_id, state FROM devices WHERE device_id = ANY(%s::text[])", (devices,)
    ).fetchall()
    state = {str(d): str(s) for d, s in rows}
    kept: list[DecodedBatch] = []
    dead: list[DeadLetter] = []
    for item in batches:
        st = state.get(item.batch.device)
        if st == "active":
            kept.append(item)
            continue
        reason = (f"device {item.batch.device} is not registered; batches are accepted only "
                  "from enrolled devices" if st is None else
                  f"device {item.batch.device} is {st}; its batches are no longer accepted")
        dead.append(DeadLetter(item.topic, item.payload, reason, "device", item.received_ms))
    return kept, dead, tuple(s for s in statuses if state.get(s.device) == "active")
