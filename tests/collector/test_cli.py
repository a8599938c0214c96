"""The tally-collector command line."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from collector.cli import Command, main
from collector.config import CollectorConfig

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_subcommands() -> None:
    """--help shows migrate, run, api and status."""
    out = subprocess.run([sys.executable, "-m", "collector", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    for name in ("migrate", "run", "api", "status"):
        assert name in out


def test_migrate_command_creates_the_schema(pg_url: str, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`migrate` applies the migrations to TALLY_DATABASE_URL."""
    monkeypatch.setenv("TALLY_DATABASE_URL", pg_url)
    assert main(["migrate", "--timescale", "no"]) == 0
    assert "0001_ingest" in capsys.readouterr().out
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('readings') IS NOT NULL").fetchone() == (True,)


def test_status_of_unknown_device_fails(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`status --device` of a device that sent nothing exits 1."""
    monkeypatch.setenv("TALLY_DATABASE_URL", pg_url)
    assert main(["migrate", "--timescale", "no"]) == 0
    assert main(["status", "--device", "ghost"]) == 1


def test_configuration_errors_exit_2(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A bad setting prints the problem and exits with status 2."""
    monkeypatch.setenv("TALLY_API_PORT", "-1")
    assert main(["status"]) == 2
    assert "api.port" in capsys.readouterr().err


def test_extra_commands_are_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Command passed by another part of Tally becomes a subcommand with its arguments."""
    seen: list[str] = []

    def configure(p: argparse.ArgumentParser) -> None:
        p.add_argument("--period")

    def run(args: argparse.Namespace, config: CollectorConfig) -> int:
        seen.append(args.period)
        return 7

    monkeypatch.delenv("TALLY_API_PORT", raising=False)
    code = main(["billing", "--period", "2026-03"],
                extra_commands=[Command("billing", "close a period", run, configure)])
    assert (code, seen) == (7, ["2026-03"])
