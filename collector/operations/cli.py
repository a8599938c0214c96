"""``tally-collector grant-collector``: the operations commands (``EXTENSION_MODULES``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from collector.config import CollectorConfig
from collector.storage.operations_roles import grant_collector

__all__ = ["commands"]


def _configure_grant(p: argparse.ArgumentParser) -> None:
    p.add_argument("role", help="the collector's login role (it must exist)")


def _grant(args: argparse.Namespace, config: CollectorConfig) -> int:
    grant_collector(config.database.url, args.role)
    print(f"granted {args.role} the collector's privileges (run as the schema owner)")
    return 0


def commands() -> Sequence[Any]:
    from collector.cli import Command  # noqa: PLC0415 - avoid an import cycle at module load

    return [
        Command(
            "grant-collector",
            "as the schema owner, give the collector's database role its least privileges",
            _grant,
            _configure_grant,
        ),
    ]
