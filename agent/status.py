"""The retained status message on ``tally/v1/<device>/status`` (pure builders, JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent.buffer_port import BufferStats


@dataclass(slots=True)
class Health:
    """What the runner counts for the status message (mutable, owned by one runner)."""

    last_error: str | None = None
    last_error_ms: int | None = None
    source_errors: int = 0
    disk_full: bool = False
    published_batches: int = 0
    published_readings: int = 0
    connects: int = 0
    lost_readings: int = 0  # taken, never stored (disk full, buffer errors) until the stop
    confirmed_batches: int = 0  # acknowledged by the collector after its commit
    duplicate_batches: int = 0  # of those: already stored before (a re-send)
    conflicting_batches: int = 0  # of those: seq stored before with other readings (kept aside)
    dead_lettered_batches: int = 0  # of those: rejected by the collector, kept as dead letters
    resent_batches: int = 0  # sent again: unconfirmed after the timeout or a reconnect
    buffer_errors: int = 0  # failed buffer deletes (retried with backoff)

    def error(self, message: str, now_ms: int) -> None:
        self.last_error = message[:300]
        self.last_error_ms = now_ms


def online_status(
    *, device: str, version: str, now_ms: int, stats: BufferStats | None, health: Health,
    config_version: int = 0,
) -> bytes:
    """The periodic/online status document (``config_version`` 0: local configuration only)."""
    doc: dict[str, object] = {
        "state": "online",
        "device": device,
        "agent": version,
        "config_version": config_version,
        "ts": now_ms,
        "buffer_depth": None if stats is None else stats.depth,
        "buffer": None if stats is None else _buffer(stats, now_ms),
        "reconciliation": None if stats is None else _reconciliation(stats, health),
        "disk_full": health.disk_full,
        "lost": health.lost_readings,
        "source_errors": health.source_errors,
        "published": {"batches": health.published_batches,
                      "readings": health.published_readings},
        "confirmed": {"batches": health.confirmed_batches,
                      "duplicates": health.duplicate_batches,
                      "conflicts": health.conflicting_batches,
                      "dead_lettered": health.dead_lettered_batches,
                      "resent": health.resent_batches},
        "buffer_errors": health.buffer_errors,
        "connects": health.connects,
        "last_error": health.last_error,
        "last_error_ts": health.last_error_ms,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def offline_status(*, device: str, version: str, reason: str, now_ms: int | None,
                   lost: int | None = None, stats: BufferStats | None = None,
                   health: Health | None = None) -> bytes:
    """The offline document: the last will (``now_ms`` None) or a clean shutdown's farewell
    (with ``lost``: readings that could not be stored, e.g. on a full disk; with ``stats`` and
    ``health``: the final buffer and reconciliation figures)."""
    doc: dict[str, object] = {"state": "offline", "device": device, "agent": version,
                              "reason": reason}
    if lost is not None:
        doc["lost"] = lost
    if stats is not None and health is not None and now_ms is not None:
        doc["buffer"] = _buffer(stats, now_ms)
        doc["reconciliation"] = _reconciliation(stats, health)
    if now_ms is not None:
        doc["ts"] = now_ms
    return json.dumps(doc, separators=(",", ":")).encode()


def _buffer(stats: BufferStats, now_ms: int) -> dict[str, object]:
    return {
        "depth": stats.depth,
        "unbatched": stats.unbatched,
        "pending_batches": stats.pending_batches,
        "oldest_ts": stats.oldest_ts_ms,
        "dropped": stats.dropped,
        "refused": stats.refused,
        "used_bytes": stats.used_bytes,
        "next_seq": stats.next_seq,
        "dropped_batches": stats.dropped_batches,
        "skipped_unreported": stats.skipped_unreported,
        "unconfirmed_batches": stats.unconfirmed_batches,
        "oldest_unconfirmed_age_s": None if stats.oldest_sent_ms is None
        else max(now_ms - stats.oldest_sent_ms, 0) / 1000,
    }


def _reconciliation(stats: BufferStats, health: Health) -> dict[str, object]:
    return {
        "taken": dict(stats.taken_by_meter),
        "first_seq": stats.first_seq,
        "last_seq_sealed": stats.next_seq - 1 if stats.first_seq is not None
        and stats.next_seq > stats.first_seq else None,
        "dropped": stats.dropped,
        "dropped_batches": stats.dropped_batches,
        "refused": stats.refused,
        "lost": health.lost_readings,
    }
