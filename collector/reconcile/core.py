"""Pure classification of a device's claim against what is stored (no I/O).

Accounting, per device, over the seq range its buffer file has used (``first_seq`` up to the
last seq sealed when the status was made):

* every reading taken is either still in the buffer (``depth``), dropped by the size policy
  (``dropped``), or was deleted after the collector confirmed it stored (or dead-lettered).
  So ``taken - dropped - depth - stored in that range`` readings are **lost** (or, when the
  device has dead letters, possibly **rejected**). A status older than the latest commits can
  only make this smaller, never invent a loss.
* every seq up to ``confirmed_seq`` must be stored or reported skipped; a missing one is a
  **lost** batch. Above it, a missing seq is **late** while the device still holds data, lost
  once its buffer is empty.
* stored twice: identical readings at one (series, time) are **duplicated**, differing ones
  **conflicting**; usage lines of one subscription on two invoices for overlapping periods are
  billed twice (counted as duplicated).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from collector.errors import ReconcileError

from .model import DeviceClaim, DeviceFacts, DeviceReconciliation, FleetReconciliation

__all__ = ["claim_from_status", "reconcile_device", "reconcile_fleet"]


def _count(doc: Mapping[str, object], key: str) -> int:
    value = doc.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReconcileError(f"{key} is not a count: {value!r:.40}")
    return value


def _seq(doc: Mapping[str, object], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReconcileError(f"{key} is not a seq: {value!r:.40}")
    return value


def claim_from_status(doc: Mapping[str, object]) -> DeviceClaim | None:
    """The claim in a status document; ``None`` when it has none (older agent, last will only).

    Raises ``ReconcileError`` for a block that is present but malformed."""
    rec = doc.get("reconciliation")
    if rec is None:
        return None
    if not isinstance(rec, Mapping):
        raise ReconcileError("reconciliation is not an object")
    taken = rec.get("taken", {})
    if not isinstance(taken, Mapping):
        raise ReconcileError("reconciliation.taken is not an object")
    by_meter = tuple(sorted((str(k), _count(taken, k)) for k in taken))
    buffer = doc.get("buffer")
    depth = _count(buffer, "depth") if isinstance(buffer, Mapping) else 0
    return DeviceClaim(
        taken=sum(n for _, n in by_meter), taken_by_meter=by_meter,
        first_seq=_seq(rec, "first_seq"), last_seq_sealed=_seq(rec, "last_seq_sealed"),
        dropped=_count(rec, "dropped"), depth=depth, lost_at_edge=_count(rec, "lost"),
    )


def reconcile_device(f: DeviceFacts) -> DeviceReconciliation:
    notes: list[str] = []
    if f.claim_error is not None:
        notes.append(f"status counters unreadable: {f.claim_error}")
    c = f.claim
    settled = c is not None and c.depth == 0
    lost_batches = f.gaps_confirmed + (f.gaps_open if settled else 0)
    late_batches = 0 if settled else f.gaps_open
    rejected = min(lost_batches, f.dead_letters)
    lost_batches -= rejected
    lost = 0
    late = 0
    taken: int | None = None
    if c is None:
        notes.append("no counters from the device: checked batch seqs only")
    else:
        taken = c.taken
        late = c.depth
        missing = 0 if c.first_seq is None else c.taken - c.dropped - c.depth - f.readings_in_claim
        if missing > 0 and f.dead_letters:
            notes.append(f"{missing} reading(s) not stored; the device has dead letters")
            rejected = max(rejected, 1)
        elif missing > 0:
            lost = missing
        if c.lost_at_edge:
            notes.append(f"{c.lost_at_edge} reading(s) could not be stored on the device")
            lost += c.lost_at_edge
        if c.first_seq is None:
            notes.append("buffer file older than seq tracking: readings not counted, seq gaps"
                         " from the first stored")
    if late_batches:
        notes.append(f"{late_batches} batch(es) not confirmed yet")
    if f.underived_ranges:
        notes.append(f"{f.underived_ranges} range(s) not derived into usage yet")
    if f.double_billed_lines:
        notes.append(f"{f.double_billed_lines} usage line(s) on overlapping invoices")
    return DeviceReconciliation(
        device_id=f.device_id, taken=taken, stored=f.readings, lost=lost,
        lost_batches=lost_batches,
        duplicated=f.duplicate_readings + f.double_billed_lines,
        conflicting=f.conflicting_readings, late=late + late_batches,
        skipped=f.skipped_batches if c is None else c.dropped, rejected=rejected,
        estimated=f.estimated_buckets, underived=f.underived_ranges, notes=tuple(notes),
    )


def reconcile_fleet(facts: Iterable[DeviceFacts]) -> FleetReconciliation:
    return FleetReconciliation(tuple(reconcile_device(f) for f in facts))
