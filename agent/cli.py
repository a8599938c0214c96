"""``tally-agent``: run the edge agent, show its buffer, or check a configuration file."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from agent import __version__
from agent.config import AgentConfig, load_config
from agent.errors import AgentError, ConfigError
from agent.redact import redact_url

# Each command imports what only it needs when it runs (PLC0415 below): `run` does not load the
# in-memory buffer or the read-only inspector, `status` and `check-config` do not load paho,
# aiosqlite or the runner, `enroll` alone loads httpx.

_DEFAULT_CONFIG = "/etc/tally-agent/agent.toml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tally-agent",
        description="Tally edge agent: reads meters, buffers readings durably in SQLite and "
        "publishes them in batches over MQTT (QoS 1).",
    )
    parser.add_argument("--version", action="version", version=f"tally-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = (
        "agent configuration file (TOML); default $TALLY_AGENT_CONFIG or " + _DEFAULT_CONFIG
    )
    specs = {
        "run": "run the agent until SIGTERM/SIGINT (then flush and exit cleanly)",
        "status": "print the buffer's figures (depth, oldest reading, dropped/refused, ...)",
        "check-config": "validate the configuration and the sources it declares, then exit",
    }
    for name, text in specs.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", "-c", type=Path, help=config_help,
                       default=Path(os.environ.get("TALLY_AGENT_CONFIG", _DEFAULT_CONFIG)))
        if name == "run":
            p.add_argument("--log-level", default="INFO",
                           choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        if name == "status":
            p.add_argument("--json", action="store_true", help="print JSON instead of text")
    text = ("enroll this device with a one-time code from the collector: writes the agent "
            "configuration and broker credentials (0600); safe to run again")
    e = sub.add_parser("enroll", help=text, description=text)
    e.add_argument("--collector", help="collector URL, e.g. https://tally.example")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--code", help="the one-time enrollment code")
    what.add_argument("--qr", help="the scanned QR text (tally-enroll:?code=…&collector=…)")
    e.add_argument("--config", "-c", type=Path, help="where to write the configuration",
                   default=Path(os.environ.get("TALLY_AGENT_CONFIG", _DEFAULT_CONFIG)))
    e.add_argument("--state-dir", type=Path, default=Path("/var/lib/tally-agent"),
                   help="where credentials and the buffer live (default /var/lib/tally-agent)")
    e.add_argument("--ca-file", type=Path, help="CA certificate of a private collector CA")
    e.add_argument("--broker-ca-file", type=Path,
                   help="CA certificate of the broker (default: --ca-file)")
    return parser


def _enroll(args: argparse.Namespace) -> int:
    from agent.enroll import EnrollRequest, enroll, parse_qr  # noqa: PLC0415 - httpx on demand

    code, collector = args.code, args.collector
    if args.qr is not None:
        code, from_qr = parse_qr(args.qr)
        collector = collector or from_qr
    if not collector:
        raise ConfigError("--collector is required (the QR code did not name one)")
    outcome = enroll(EnrollRequest(
        collector, code, args.config, args.state_dir, args.ca_file, args.broker_ca_file,
    ))
    if outcome.already_enrolled:
        print(f"already enrolled as {outcome.device_id} ({args.config}); nothing changed")
    else:
        print(f"enrolled as {outcome.device_id}; configuration written to {args.config}; "
              "start the agent with `tally-agent run`")
    return 0


async def _run(cfg: AgentConfig) -> int:
    from agent.runner import run_agent  # noqa: PLC0415 - see the note on imports above

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await run_agent(cfg, stop)


def _fmt_ts(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _status(cfg: AgentConfig, as_json: bool) -> None:
    from agent.buffer_inspect import inspect_buffer  # noqa: PLC0415 - see the note on imports

    stats = inspect_buffer(Path(cfg.buffer.path))
    if as_json:
        print(json.dumps({"device": cfg.device_id, "buffer": str(cfg.buffer.path),
                          **asdict(stats)}))
        return
    rows = [
        ("device", cfg.device_id),
        ("buffer file", str(cfg.buffer.path)),
        ("readings buffered", f"{stats.depth}"),
        ("  not yet batched", f"{stats.unbatched}"),
        ("batches awaiting PUBACK", f"{stats.pending_batches}"),
        ("oldest buffered reading", _fmt_ts(stats.oldest_ts_ms)),
        ("dropped (drop_oldest)", f"{stats.dropped}"),
        ("refused (refuse_new)", f"{stats.refused}"),
        ("bytes in use", f"{stats.used_bytes}"),
        ("next batch seq", f"{stats.next_seq}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def _check(cfg: AgentConfig) -> None:
    from agent.buffer_fake import MemoryBuffer  # noqa: PLC0415 - see the note on imports above
    from agent.sources.factory import build_sources  # noqa: PLC0415 - see the note on imports

    sources = build_sources(cfg.sources, MemoryBuffer())
    print(f"config OK: device {cfg.device_id}, broker {redact_url(cfg.broker.url)}, "
          f"buffer {cfg.buffer.path}, encoding {cfg.encoding.value}")
    for s in sources:
        print(f"  source {s.name}: every {s.interval_s:g}s")


EXIT_LOST = 3  # the agent stopped, but readings it took could not be stored


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tally-agent`` and ``python -m agent``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "enroll":
            return _enroll(args)
        cfg = load_config(args.config, os.environ)
        if args.command == "check-config":
            _check(cfg)
        elif args.command == "status":
            _status(cfg, args.json)
        else:
            logging.basicConfig(
                level=args.log_level, stream=sys.stderr,
                format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            )
            logging.getLogger("aiosqlite").setLevel(logging.INFO)  # one line per SQL call
            lost = asyncio.run(_run(cfg))
            if lost:
                print(f"tally-agent: {lost} reading(s) could not be stored and are lost "
                      "(the log above says why)", file=sys.stderr)
                return EXIT_LOST
    except ConfigError as exc:
        print(f"tally-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    except AgentError as exc:
        print(f"tally-agent: {exc}", file=sys.stderr)
        return 1
    return 0
