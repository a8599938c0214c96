"""The tally-bridge command line: help, offline decoding, and probing a simulated meter."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_bridge.cli import main
from firmware_bridge.simulators.load import LoadModel
from firmware_bridge.simulators.p1 import make_telegram

FIXTURES = Path(__file__).parent / "fixtures"


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints the subcommands and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "simulate" in capsys.readouterr().out


def test_decode_p1_capture(tmp_path: Path) -> None:
    """decode p1 prints every telegram in a capture with noise, and counts skipped bytes."""
    model = LoadModel(t0_s=1_767_225_600.0)
    capture = tmp_path / "p1.bin"
    capture.write_bytes(
        b"junk" + make_telegram(model, model.t0_s) + make_telegram(model, model.t0_s + 10)
    )
    out = io.StringIO()
    assert main(["decode", "p1", str(capture)], out=out) == 0
    text = out.getvalue()
    assert text.count("energy_import_t1") == 2
    assert "2 telegram(s), 0 invalid, 4 byte(s) skipped" in text


def test_decode_p1_reports_crc_failure() -> None:
    """The spec example with its printed (wrong) CRC is reported invalid with exit status 1."""
    out = io.StringIO()
    assert main(["decode", "p1", str(FIXTURES / "dsmr_5_0_2_spec_example.p1")], out=out) == 1
    assert "CRC" in out.getvalue()


def test_decode_senml(tmp_path: Path) -> None:
    """decode senml prints the readings of a pack."""
    pack = tmp_path / "pack.json"
    pack.write_bytes(b'[{"bn":"dev:","n":"energy","u":"kWh","s":5}]')
    out = io.StringIO()
    assert main(["decode", "senml", str(pack)], out=out) == 0
    assert re.search(r"dev\s+energy\s+5\.0000 kWh\s+cumulative", out.getvalue())


def test_probe_against_the_simulator() -> None:
    """probe modbus reads a meter started with 'simulate modbus' in another process."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "firmware_bridge.cli", "simulate", "modbus",
         "--port", "0", "--map", "sdm120"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        banner = sim.stdout.readline()
        port = re.search(r"127\.0\.0\.1:(\d+)", banner)
        assert port, banner
        out = io.StringIO()
        deadline = time.monotonic() + 10
        status = main(["probe", "modbus", f"127.0.0.1:{port.group(1)}", "--map", "sdm120"], out=out)
        assert time.monotonic() < deadline
    finally:
        sim.terminate()
        sim.wait(10)
    assert status == 0, out.getvalue()
    assert re.search(r"energy_import\s+1234\.5\d* kWh", out.getvalue())


def test_probe_reports_unreachable_meter() -> None:
    """probe exits 1 with FAILED when nothing answers."""
    out = io.StringIO()
    assert main(["probe", "modbus", "127.0.0.1:1", "--timeout", "0.5"], out=out) == 1
    assert "FAILED" in out.getvalue()
