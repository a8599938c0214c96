"""Gather a fleet's facts from storage and classify them (orchestration, no SQL here)."""

from __future__ import annotations

from collections.abc import Sequence

from collector.errors import ReconcileError
from collector.storage import reconcile_queries as q
from collector.storage.database import Pool

from .core import claim_from_status, reconcile_fleet
from .model import DeviceClaim, DeviceFacts, FleetReconciliation

__all__ = ["reconcile"]


def _claim(row: q.DeviceRow) -> tuple[DeviceClaim | None, str | None]:
    if row.status is None:
        return None, None
    try:
        return claim_from_status(row.status), None
    except ReconcileError as exc:
        return None, str(exc)


def reconcile(pool: Pool, devices: Sequence[str] | None = None) -> FleetReconciliation:
    rows = q.device_rows(pool, devices)
    claims = {r.device_id: _claim(r) for r in rows}
    ranges = []
    for r in rows:
        c = claims[r.device_id][0]
        low = c.first_seq if c is not None and c.first_seq is not None else r.first_seq
        ranges.append(q.SeqRange(
            device_id=r.device_id, low=low, confirmed=r.confirmed_seq,
            sealed=None if c is None else c.last_seq_sealed,
            claim_low=None if c is None else c.first_seq,
            claim_high=None if c is None else c.last_seq_sealed,
        ))
    counts = q.stored_counts(pool, ranges)
    return reconcile_fleet(_facts(r, *claims[r.device_id], counts[r.device_id]) for r in rows)


def _facts(r: q.DeviceRow, claim: DeviceClaim | None, error: str | None,
           c: q.StoredCounts) -> DeviceFacts:
    return DeviceFacts(
        device_id=r.device_id, claim=claim, claim_error=error, batches=c.batches,
        readings=c.readings, readings_in_claim=c.readings_in_claim,
        confirmed_seq=r.confirmed_seq, gaps_confirmed=c.gaps_confirmed, gaps_open=c.gaps_open,
        skipped_batches=c.skipped_batches, dead_letters=c.dead_letters,
        duplicate_readings=c.duplicate_readings, conflicting_readings=c.conflicting_readings,
        estimated_buckets=c.estimated_buckets, underived_ranges=c.underived_ranges,
        double_billed_lines=c.double_billed_lines,
    )
