"""What the demo shows: a snapshot of ingest per device, as a rich table or as a log line.

``take_snapshot`` reads the database through the storage layer (and the in-process collector's
counters); ``render_table`` and ``render_line`` are pure functions of a snapshot and ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text

from collector.api.ingest_routes import IngestProbe
from collector.storage.database import Pool
from collector.storage.ingest_queries import list_devices

__all__ = ["DeviceRow", "Snapshot", "render_line", "render_table", "take_snapshot"]


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One device as the database sees it."""

    device_id: str
    readings: int
    batches: int
    last_seen: datetime | None
    missing_batches: int
    buffer_depth: int | None
    state: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one refresh of the demo display shows."""

    devices: tuple[DeviceRow, ...]
    dead_letters: int
    consumer_connected: bool
    pending: int
    api_url: str
    invoice_line: str | None = None

    @property
    def readings(self) -> int:
        return sum(d.readings for d in self.devices)

    @property
    def batches(self) -> int:
        return sum(d.batches for d in self.devices)


def take_snapshot(
    pool: Pool, devices: Sequence[str], probe: Callable[[], IngestProbe], api_url: str,
    invoice_line: str | None = None,
) -> Snapshot:
    """Read the per-device ingest figures of ``devices`` (others in the database are ignored)."""
    found = {d.device_id: d for d in list_devices(pool)}
    rows = []
    for device in devices:
        d = found.get(device)
        if d is None:
            rows.append(DeviceRow(device, 0, 0, None, 0, None, None))
            continue
        status = d.status
        rows.append(DeviceRow(
            device, d.readings, d.batches, d.last_seen, d.missing_batches,
            status.buffer_depth if status else None, status.state if status else None,
        ))
    p = probe()
    return Snapshot(tuple(rows), p.dead_letters, p.connected, p.pending, api_url, invoice_line)


def _ago(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "never"
    seconds = max(0.0, (now - ts).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s ago"
    return f"{seconds / 60:.0f}m ago"


def _opt(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def render_table(snap: Snapshot, now: datetime, elapsed_s: float) -> Group:
    """The live view: one row per device, totals, and where the API is."""
    table = Table(title=f"Tally demo - {len(snap.devices)} simulated devices, "
                  f"running {elapsed_s:.0f}s", title_justify="left")
    table.add_column("device")
    table.add_column("readings stored", justify="right")
    table.add_column("batches", justify="right")
    table.add_column("last seen", justify="right")
    table.add_column("seq gaps", justify="right")
    table.add_column("agent buffer", justify="right")
    table.add_column("agent", justify="left")
    for d in snap.devices:
        gaps = Text(str(d.missing_batches), style="red" if d.missing_batches else "green")
        table.add_row(d.device_id, f"{d.readings:,}", f"{d.batches:,}", _ago(d.last_seen, now),
                      gaps, _opt(d.buffer_depth), d.state or "-")
    table.add_section()
    table.add_row(Text("total", style="bold"), Text(f"{snap.readings:,}", style="bold"),
                  f"{snap.batches:,}", "", "", "", "")
    consumer = Text("connected", style="green") if snap.consumer_connected else Text(
        "disconnected", style="red")
    footer = Text.assemble(
        "collector: ", consumer, f"   pending messages: {snap.pending}",
        "   dead letters (this run): ",
        Text(str(snap.dead_letters), style="red" if snap.dead_letters else "green"),
        f"\nAPI: {snap.api_url}/docs   health: {snap.api_url}/health",
        "\nCtrl-C stops everything (agents flush their buffers first).",
    )
    parts: list[Table | Text] = [table, footer]
    if snap.invoice_line:
        parts.insert(1, Text(snap.invoice_line, style="cyan"))
    return Group(*parts)


def render_line(snap: Snapshot, elapsed_s: float) -> str:
    """The plain (non-TTY) view: one log line with totals and readings per device."""
    per_device = " ".join(f"{d.device_id}={d.readings}" for d in snap.devices)
    gaps = sum(d.missing_batches for d in snap.devices)
    return (f"t={elapsed_s:.0f}s readings={snap.readings} batches={snap.batches} gaps={gaps} "
            f"dead_letters={snap.dead_letters} consumer="
            f"{'up' if snap.consumer_connected else 'down'} | {per_device}")
