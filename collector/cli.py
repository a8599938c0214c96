"""``tally-collector``: migrate the schema, run the collector, serve the API, show ingest status.

Other parts of Tally add subcommands without editing this file's logic: a module listed in
``EXTENSION_MODULES`` exposes ``commands() -> Sequence[Command]``; ``main`` also accepts
``extra_commands`` directly (tests, embedding).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.config import CollectorConfig, load_config
from collector.errors import CollectorError

__all__ = ["EXTENSION_MODULES", "Command", "build_parser", "main"]

# Modules that contribute subcommands (each has ``commands() -> Sequence[Command]``).
EXTENSION_MODULES: tuple[str, ...] = (
    "collector.billing.cli", "collector.access.cli", "collector.devices.cli",
    "collector.operations.cli",
)


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: ``configure`` adds its arguments, ``run`` executes it (exit status)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace, CollectorConfig], int]
    configure: Callable[[argparse.ArgumentParser], None] | None = None


def _migrate(args: argparse.Namespace, config: CollectorConfig) -> int:
    from collector.runner import migrate_from_config  # noqa: PLC0415 - keep --help fast

    if args.timescale != "auto":
        config = config.model_copy(
            update={"database": config.database.model_copy(update={"timescale": args.timescale})}
        )
    applied = migrate_from_config(config)
    print("applied: " + (", ".join(applied) if applied else "nothing (schema is current)"))
    return 0


def _configure_migrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timescale", choices=("auto", "yes", "no"), default="auto",
                   help="use the TimescaleDB flavour of migrations (default: autodetect)")


def _run(args: argparse.Namespace, config: CollectorConfig) -> int:
    from collector.runner import run_collector  # noqa: PLC0415

    return run_collector(config, with_api=not args.no_api, migrate_first=args.migrate)


def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--migrate", action="store_true", help="apply migrations before starting")
    p.add_argument("--no-api", action="store_true", help="run the consumer without the HTTP API")


def _api(args: argparse.Namespace, config: CollectorConfig) -> int:
    from collector.runner import run_api  # noqa: PLC0415

    return run_api(config)


def _status(args: argparse.Namespace, config: CollectorConfig) -> int:
    from collector.storage import ingest_queries as q  # noqa: PLC0415
    from collector.storage.database import open_pool  # noqa: PLC0415

    pool = open_pool(config.database.url, min_size=1, max_size=1)
    try:
        if args.device:
            d = q.device_ingest(pool, args.device)
            if d is None:
                print(f"device {args.device!r} has sent nothing", file=sys.stderr)
                return 1
            gaps = ", ".join(f"{g.first}-{g.last}" for g in d.gaps) or "none"
            print(f"{d.device_id}: {d.batches} batches, {d.readings} readings, seq "
                  f"{d.first_seq}..{d.last_seq}, missing {d.missing_batches} (gaps: {gaps}), "
                  f"last seen {d.last_seen}")
            if d.status is not None:
                print(f"  status {d.status.state} buffer={d.status.buffer_depth} "
                      f"at {d.status.received_at}: {json.dumps(d.status.document)}")
            return 0
        for d in q.list_devices(pool):
            print(f"{d.device_id:<32} batches={d.batches:<8} readings={d.readings:<10} "
                  f"last_seq={d.last_seq} missing={d.missing_batches} last_seen={d.last_seen}")
        return 0
    finally:
        pool.close()


def _configure_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="details (sequence gaps, status) of one device")


def _staff_token(args: argparse.Namespace, config: CollectorConfig) -> int:
    import secrets  # noqa: PLC0415

    from collector.api.staff_auth import hash_token  # noqa: PLC0415

    token = secrets.token_urlsafe(32)
    print(f"token (give to the staff member, shown once): {token}")
    print(f"config entry (api.staff_tokens / TALLY_API_STAFF_TOKENS): {hash_token(token)}")
    return 0


def builtin_commands() -> list[Command]:
    return [
        Command("staff-token", "make a staff API token and its config digest", _staff_token),
        Command("migrate", "apply database migrations", _migrate, _configure_migrate),
        Command("run", "run the MQTT consumer and the HTTP API", _run, _configure_run),
        Command("api", "serve only the HTTP API", _api),
        Command("status", "print ingest status per device", _status, _configure_status),
    ]


def extension_commands(modules: Sequence[str] = EXTENSION_MODULES) -> list[Command]:
    found: list[Command] = []
    for name in modules:
        found.extend(importlib.import_module(name).commands())
    return found


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tally-collector",
        description="Tally collector: ingest meter readings from MQTT into PostgreSQL.",
        epilog="Settings come from --config (TOML) and TALLY_<SECTION>_<KEY> environment "
        "variables, e.g. TALLY_DATABASE_URL, TALLY_MQTT_URL; see docs/operations.md.",
    )
    parser.add_argument("--config", type=Path, help="TOML configuration file ($TALLY_CONFIG)")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in commands:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        if cmd.configure is not None:
            cmd.configure(p)
        p.set_defaults(handler=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None, *, extra_commands: Sequence[Command] = ()) -> int:
    # A later command of the same name replaces an earlier one (tests pass their own).
    by_name = {c.name: c for c in [*builtin_commands(), *extension_commands(), *extra_commands]}
    commands = list(by_name.values())
    args = build_parser(commands).parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
        handler: Callable[[argparse.Namespace, CollectorConfig], int] = args.handler
        return handler(args, config)
    except CollectorError as exc:
        print(f"tally-collector: {exc}", file=sys.stderr)
        return 2
