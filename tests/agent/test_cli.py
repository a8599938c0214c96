"""The tally-agent command line: help, check-config, status, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.buffer import SqliteBuffer
from agent.cli import main
from agent.protocol import Kind, Reading

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "agent" / "examples" / "agent.toml"


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'device_id = "cli-1"\n{extra}[buffer]\npath = "{tmp_path / "b.db"}"\n')
    return path


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["status", "--help"],
                                  ["check-config", "--help"]])
def test_help_exits_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """--help works on the program and on each command."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: tally-agent" in capsys.readouterr().out


def test_check_config_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    """check-config on the shipped example prints OK and every source."""
    assert main(["check-config", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "config OK" in out
    assert "source house-energy" in out


def test_check_config_names_a_bad_field(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A bad value gives exit code 2 and the field's name on stderr."""
    path = config(tmp_path, 'encoding = "xml"\n')
    assert main(["check-config", "--config", str(path)]) == 2
    assert "encoding:" in capsys.readouterr().err


async def test_status_reads_the_buffer_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """status --json reports the depth of the buffer file named in the config."""
    path = config(tmp_path)
    buf = await SqliteBuffer.open(tmp_path / "b.db", device_id="cli-1", now_ms=10**12)
    await buf.append([Reading("m", "e", "kWh", Kind.CUMULATIVE, 10**12 + i, i) for i in range(5)])
    await buf.close()
    assert main(["status", "--json", "--config", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["device"], doc["depth"], doc["unbatched"]) == ("cli-1", 5, 5)


def test_status_without_buffer_is_an_error(tmp_path: Path) -> None:
    """status before the agent ever ran exits 1 with a message, not a traceback."""
    assert main(["status", "--config", str(config(tmp_path))]) == 1


def test_python_dash_m_agent_works() -> None:
    """`python -m agent --version` runs the same CLI."""
    out = subprocess.run([sys.executable, "-m", "agent", "--version"], cwd=ROOT, check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.startswith("tally-agent ")
