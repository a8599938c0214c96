"""Frozen facts about one device (what it claims, what is stored) and the classified result."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class DeviceClaim:
    """What an agent says about itself in the ``reconciliation`` block of its status."""

    taken: int  # readings committed to its buffer file, all meters, ever
    taken_by_meter: tuple[tuple[str, int], ...]
    first_seq: int | None  # seq range this buffer file has used (None: file older than that)
    last_seq_sealed: int | None
    dropped: int  # readings dropped by the size policy (reported, deliberate)
    depth: int  # readings still in the buffer when the status was made
    lost_at_edge: int  # readings the agent could not store at all (disk full)

    def __post_init__(self) -> None:
        for f in ("taken", "dropped", "depth", "lost_at_edge"):
            if getattr(self, f) < 0:
                raise ValueError(f"{f} must be >= 0")


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the database holds for one device; counts over the ranges the claim names."""

    device_id: str
    claim: DeviceClaim | None
    claim_error: str | None  # why a status' reconciliation block could not be read
    batches: int
    readings: int  # readings in stored batches (sum of their reading counts)
    readings_in_claim: int  # of those: in batches with seq in [first_seq, last_seq_sealed]
    confirmed_seq: int | None  # the device was told every seq up to here is durable
    gaps_confirmed: int  # seqs <= confirmed_seq neither stored nor reported skipped
    gaps_open: int  # seqs in (confirmed_seq, last_seq_sealed] neither stored nor skipped
    skipped_batches: int  # seqs the agent reported skipped (drop_oldest)
    dead_letters: int  # payloads from this device kept as dead letters
    duplicate_readings: int  # extra copies of an identical (series, time, value)
    conflicting_readings: int  # extra readings at a (series, time) with another value
    estimated_buckets: int  # 15-minute buckets with an estimated part
    underived_ranges: int  # usage_dirty ranges not derived into usage yet
    double_billed_lines: int  # usage lines of one subscription on overlapping invoices


@dataclass(frozen=True, slots=True)
class DeviceReconciliation:
    """One device, classified. ``lost`` and ``duplicated`` (and ``conflicting``) fail a run."""

    device_id: str
    taken: int | None
    stored: int
    lost: int  # readings (or, without counters, batches) gone between device and database
    lost_batches: int
    duplicated: int  # readings stored twice + usage lines billed twice
    conflicting: int
    late: int  # still on the device or in flight (not lost yet)
    skipped: int  # dropped by the device's size policy, reported by it
    rejected: int  # kept as dead letters (with their reason)
    estimated: int
    underived: int
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.lost_batches == 0 and self.duplicated == 0 \
            and self.conflicting == 0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["notes"] = list(self.notes)
        out["ok"] = self.ok
        return out


@dataclass(frozen=True, slots=True)
class FleetReconciliation:
    devices: tuple[DeviceReconciliation, ...]

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.devices)

    def total(self, name: str) -> int:
        return sum(int(getattr(d, name) or 0) for d in self.devices)
