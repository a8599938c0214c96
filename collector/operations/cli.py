"""``tally-collector grant-collector``: the operations commands (``EXTENSION_MODULES``)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig
from collector.errors import ConfigError
from collector.storage.archive_store import list_archive, restore_partition, run_archive
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


def _configure_archive(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="archive_action", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="export old monthly partitions to Parquet, verify, drop")
    run.add_argument("--dir", type=Path, required=True, help="where the Parquet files go")
    run.add_argument("--older-than-days", type=int, default=400,
                     help="archive months that ended at least this many days ago (the "
                     "correction horizon; default 400)")
    run.add_argument("--dry-run", action="store_true", help="only list what would be archived")
    sub.add_parser("list", help="archived months: file, readings, bytes per reading")
    restore = sub.add_parser("restore", help="attach an archived month again from its file")
    restore.add_argument("partition", help="e.g. readings_p202601 (see: archive list)")


def _archive(args: argparse.Namespace, config: CollectorConfig) -> int:
    if args.archive_action == "list":
        for e in list_archive(config.database.url):
            print(f"{e.partition}  {e.ts_from:%Y-%m-%d} .. {e.ts_to:%Y-%m-%d}  {e.readings:,}"
                  f" readings  {e.bytes:,} bytes ({e.bytes_per_reading:.2f} B/reading)  {e.path}")
        return 0
    if args.archive_action == "restore":
        e = restore_partition(config.database.url, args.partition)
        print(f"restored {e.partition}: {e.readings:,} readings from {e.path} (file kept)")
        return 0
    if args.older_than_days < 1:
        raise ConfigError("--older-than-days must be >= 1")
    parts, done = run_archive(config.database.url, datetime.now(UTC),
                              timedelta(days=args.older_than_days), args.dir,
                              dry_run=args.dry_run)
    if args.dry_run:
        for p in parts:
            print(f"would archive {p.name} ({p.ts_from:%Y-%m-%d} .. {p.ts_to:%Y-%m-%d})")
        return 0
    for e in done:
        print(f"archived {e.partition}: {e.readings:,} readings, {e.bytes:,} bytes"
              f" ({e.bytes_per_reading:.2f} B/reading) -> {e.path}")
    if not done:
        print("nothing to archive")
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
        Command(
            "archive",
            "retention: export billed monthly readings partitions to Parquet and drop them",
            _archive,
            _configure_archive,
        ),
    ]
