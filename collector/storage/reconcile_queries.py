"""Read side of ``tally-collector reconcile``: per-device counts over batches, readings, usage
and invoices (read only; one snapshot per call)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .database import Pool, translate_errors

__all__ = ["DeviceRow", "SeqRange", "StoredCounts", "device_rows", "stored_counts"]

_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device_id: str
    first_seq: int | None  # lowest seq stored
    confirmed_seq: int | None
    status: dict[str, Any] | None  # the latest status document


@dataclass(frozen=True, slots=True)
class SeqRange:
    """The seq ranges to count for one device (``None`` bounds: nothing to count)."""

    device_id: str
    low: int | None  # the device's first seq (its claim, else the first stored)
    confirmed: int | None
    sealed: int | None  # the last seq sealed per the claim
    claim_low: int | None
    claim_high: int | None


@dataclass(frozen=True, slots=True)
class StoredCounts:
    batches: int = 0
    readings: int = 0
    readings_in_claim: int = 0
    gaps_confirmed: int = 0
    gaps_open: int = 0
    skipped_batches: int = 0
    dead_letters: int = 0
    duplicate_readings: int = 0
    conflicting_readings: int = 0
    estimated_buckets: int = 0
    underived_ranges: int = 0
    double_billed_lines: int = 0


def device_rows(pool: Pool, devices: Sequence[str] | None = None) -> list[DeviceRow]:
    """Every device with batches or a status (or only ``devices``), by id."""
    with translate_errors("reconcile: devices"), pool.connection(timeout=_TIMEOUT_S) as conn:
        rows = conn.execute(
            "SELECT coalesce(di.device_id, ds.device_id), di.first_seq, di.confirmed_seq,"
            " ds.payload FROM device_ingest di FULL JOIN device_status ds USING (device_id)"
            " WHERE %(all)s OR coalesce(di.device_id, ds.device_id) = ANY(%(ids)s) ORDER BY 1",
            {"all": devices is None, "ids": list(devices or ())},
        ).fetchall()
    return [DeviceRow(str(r[0]), r[1], r[2], r[3] if isinstance(r[3], dict) else None)
            for r in rows]


# Per device; the two CASE columns count seqs in [lo, hc] and [olo, hs] neither stored nor
# reported skipped.
_PER_DEVICE = (
    "SELECT x.d,"
    " (SELECT count(*) FROM batches b WHERE b.device_id = x.d),"
    " (SELECT coalesce(sum(reading_count), 0) FROM batches b WHERE b.device_id = x.d),"
    " (SELECT coalesce(sum(reading_count), 0) FROM batches b WHERE b.device_id = x.d"
    "  AND b.seq BETWEEN x.clo AND x.chi),"
    " CASE WHEN x.lo IS NULL OR x.hc IS NULL OR x.hc < x.lo THEN 0 ELSE (x.hc - x.lo + 1)"
    " - (SELECT count(*) FROM batches b WHERE b.device_id = x.d AND b.seq BETWEEN x.lo AND x.hc)"
    " - (SELECT count(*) FROM batch_skips k WHERE k.device_id = x.d"
    " AND k.seq BETWEEN x.lo AND x.hc AND NOT EXISTS (SELECT 1 FROM batches b"
    " WHERE b.device_id = k.device_id AND b.seq = k.seq)) END,"
    " CASE WHEN x.olo IS NULL OR x.hs IS NULL OR x.hs < x.olo THEN 0 ELSE (x.hs - x.olo + 1)"
    " - (SELECT count(*) FROM batches b WHERE b.device_id = x.d AND b.seq BETWEEN x.olo AND x.hs)"
    " - (SELECT count(*) FROM batch_skips k WHERE k.device_id = x.d"
    " AND k.seq BETWEEN x.olo AND x.hs AND NOT EXISTS (SELECT 1 FROM batches b"
    " WHERE b.device_id = k.device_id AND b.seq = k.seq)) END,"
    " (SELECT count(*) FROM batch_skips k WHERE k.device_id = x.d)"
    " FROM (SELECT *, coalesce(hc + 1, lo) AS olo FROM unnest(%s::text[], %s::bigint[],"
    " %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) AS u(d, lo, hc, hs, clo, chi)) x"
)

_BY_DEVICE: dict[str, str] = {
    "dead_letters": "SELECT split_part(topic, '/', 3), count(*) FROM dead_letters"
                    " WHERE split_part(topic, '/', 3) = ANY(%(ids)s) GROUP BY 1",
    "copies": "SELECT s.device_id, sum(r.n - r.nv), sum(r.nv - 1) FROM ("
              " SELECT series_id, ts, count(*) AS n, count(DISTINCT value) AS nv FROM readings"
              " WHERE series_id IN (SELECT series_id FROM series WHERE device_id = ANY(%(ids)s))"
              " GROUP BY series_id, ts HAVING count(*) > 1) r"
              " JOIN series s USING (series_id) GROUP BY 1",
    "estimated": "SELECT s.device_id, count(*) FROM usage_15m u JOIN series s USING (series_id)"
                 " WHERE u.estimated > 0 AND s.device_id = ANY(%(ids)s) GROUP BY 1",
    "underived": "SELECT s.device_id, count(*) FROM usage_dirty u JOIN series s USING (series_id)"
                 " WHERE s.device_id = ANY(%(ids)s) GROUP BY 1",
    "billed_twice": "SELECT s.device_id, count(DISTINCT l1.line_id)"
                    " FROM invoice_lines l1 JOIN invoices i1 ON i1.invoice_id = l1.invoice_id"
                    " JOIN invoice_lines l2 ON l2.subscription_id = l1.subscription_id"
                    "  AND l2.invoice_id <> l1.invoice_id AND l2.kind = 'usage'"
                    "  AND l2.corrects_invoice_id IS NULL"
                    " JOIN invoices i2 ON i2.invoice_id = l2.invoice_id"
                    "  AND i2.period_start < i1.period_end AND i1.period_start < i2.period_end"
                    " JOIN subscriptions sub ON sub.subscription_id = l1.subscription_id"
                    " JOIN series s ON s.series_id = sub.series_id"
                    " WHERE l1.kind = 'usage' AND l1.corrects_invoice_id IS NULL"
                    "  AND s.device_id = ANY(%(ids)s) GROUP BY 1",
}


def stored_counts(pool: Pool, ranges: Sequence[SeqRange]) -> dict[str, StoredCounts]:
    """What is stored for each device over its ranges, in one read-only transaction."""
    ids = [r.device_id for r in ranges]
    out: dict[str, dict[str, int]] = {d: {} for d in ids}
    with translate_errors("reconcile: counts"), pool.connection(timeout=_TIMEOUT_S) as conn, \
            conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for r in conn.execute(_PER_DEVICE, (
            ids, [x.low for x in ranges], [x.confirmed for x in ranges],
            [x.sealed for x in ranges], [x.claim_low for x in ranges],
            [x.claim_high for x in ranges],
        )):
            out[str(r[0])].update(
                batches=int(r[1]), readings=int(r[2]), readings_in_claim=int(r[3]),
                gaps_confirmed=int(r[4]), gaps_open=int(r[5]), skipped_batches=int(r[6]))
        for name, query in _BY_DEVICE.items():
            for r in conn.execute(query, {"ids": ids}):
                d = out.get(str(r[0]))
                if d is None:
                    continue
                if name == "copies":
                    d.update(duplicate_readings=int(r[1]), conflicting_readings=int(r[2]))
                else:
                    key = {"dead_letters": "dead_letters", "estimated": "estimated_buckets",
                           "underived": "underived_ranges",
                           "billed_twice": "double_billed_lines"}[name]
                    d[key] = int(r[1])
    return {d: StoredCounts(**v) for d, v in out.items()}
