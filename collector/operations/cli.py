"""``tally-collector grant-collector``: the operations commands (``EXTENSION_MODULES``)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from collector.config import CollectorConfig
from collector.errors import ConfigError
from collector.storage.operations_roles import grant_collector
from collector.storage.usage_backfill import run_backfill

__all__ = ["commands"]


def _configure_grant(p: argparse.ArgumentParser) -> None:
    p.add_argument("role", help="the collector's login role (it must exist)")


def _grant(args: argparse.Namespace, config: CollectorConfig) -> int:
    grant_collector(config.database.url, args.role)
    print(f"granted {args.role} the collector's privileges (run as the schema owner)")
    return 0


def _configure_backfill(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="ts_from", required=True, type=_timestamp,
                   help="start of the range, ISO 8601 (e.g. 2026-03-01T00:00:00Z)")
    p.add_argument("--to", dest="ts_to", required=True, type=_timestamp,
                   help="end of the range (inclusive), ISO 8601")
    p.add_argument("--series", type=int, nargs="*", default=None,
                   help="series ids (default: every series)")


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _backfill(args: argparse.Namespace, config: CollectorConfig) -> int:
    if args.ts_to < args.ts_from:
        raise ConfigError("--to is before --from")
    started = time.monotonic()
    rep = run_backfill(config.database.url, args.ts_from, args.ts_to, args.series)
    took = time.monotonic() - started
    print(f"backfilled {rep.series} series: {rep.readings_loaded:,} readings,"
          f" {rep.buckets_written:,} buckets and {rep.days_packed:,} days written in {took:.1f} s")
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
        Command(
            "usage-backfill",
            "re-derive 15-minute usage from raw readings over a time range (bulk path)",
            _backfill,
            _configure_backfill,
        ),
    ]
