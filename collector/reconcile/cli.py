"""``tally-collector reconcile``: exit 0 when nothing is lost or counted twice, 1 otherwise.

Wired through ``collector.cli.EXTENSION_MODULES`` (``commands()``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .render import as_json, as_table

if TYPE_CHECKING:
    from collector.cli import Command
    from collector.config import CollectorConfig

__all__ = ["commands"]


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", action="append", metavar="ID",
                   help="reconcile only this device (repeatable; default: every device)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--problems", action="store_true",
                   help="table: list only devices that fail (totals still cover all)")


def _run(args: argparse.Namespace, config: CollectorConfig) -> int:
    from collector.storage.database import open_pool  # noqa: PLC0415 - keep --help fast

    from .gather import reconcile  # noqa: PLC0415

    pool = open_pool(config.database.url, min_size=1, max_size=1, name="tally-reconcile")
    try:
        fleet = reconcile(pool, args.device)
    finally:
        pool.close()
    print(as_json(fleet) if args.json else as_table(fleet, only_problems=args.problems))
    return 0 if fleet.ok else 1


def commands() -> Sequence[Command]:
    from collector.cli import Command  # noqa: PLC0415 - collector.cli imports this module

    return [Command("reconcile", "compare what devices produced with what is stored and billed;"
                    " exit 1 on any loss or double count", _run, _configure)]
