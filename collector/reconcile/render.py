"""The reconciliation as a fixed-width table or JSON (pure)."""

from __future__ import annotations

import json

from .model import FleetReconciliation

__all__ = ["as_json", "as_table"]

_COLUMNS = ("taken", "stored", "lost", "lost_batches", "duplicated", "conflicting", "late",
            "skipped", "rejected", "estimated", "underived")


def as_table(fleet: FleetReconciliation, *, only_problems: bool = False) -> str:
    width = max((len(d.device_id) for d in fleet.devices), default=6)
    width = max(width, 6)
    head = f"{'device':<{width}} " + " ".join(f"{c:>12}" for c in _COLUMNS) + "  result"
    lines = [head]
    for d in fleet.devices:
        if only_problems and d.ok:
            continue
        cells = " ".join(f"{'-' if getattr(d, c) is None else getattr(d, c):>12}"
                         for c in _COLUMNS)
        verdict = "ok" if d.ok else "FAIL"
        lines.append(f"{d.device_id:<{width}} {cells}  {verdict}")
        lines.extend(f"{'':<{width}}   {note}" for note in d.notes)
    totals = " ".join(f"{fleet.total(c):>12}" for c in _COLUMNS)
    lines.append(f"{'total':<{width}} {totals}  {'ok' if fleet.ok else 'FAIL'}"
                 f" ({len(fleet.devices)} devices)")
    return "\n".join(lines)


def as_json(fleet: FleetReconciliation) -> str:
    doc = {"ok": fleet.ok, "devices": [d.as_dict() for d in fleet.devices],
           "totals": {c: fleet.total(c) for c in _COLUMNS if c != "taken"}}
    return json.dumps(doc, indent=2)
