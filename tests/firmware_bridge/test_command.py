"""Command and file sources: a number found by regex; failures flagged as SourceError."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from agent.errors import SourceError
from agent.protocol import Kind
from firmware_bridge.command.source import CommandSource, FileSource, ValueSpec, parse_number
from firmware_bridge.errors import DecodeError
from tests.firmware_bridge.conftest import FakeClock

NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


def _spec(pattern: str = NUMBER, scale: float = 1.0) -> ValueSpec:
    return ValueSpec(re.compile(pattern), "energy", "kWh", Kind.CUMULATIVE, scale)


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("42\n", NUMBER, 42.0),
        ("total: 1.5e3 Wh", NUMBER, 1500.0),
        ("a=1 b=2", r"b=(\d+)", 2.0),
        ("x=7 y=9", r"x=(?P<skip>\d) y=(?P<value>\d)", 9.0),
        ("-3.25", NUMBER, -3.25),
    ],
)
def test_parse_number(text: str, pattern: str, expected: float) -> None:
    """The named group 'value', else the first group, else the whole match is the number."""
    assert parse_number(text, re.compile(pattern)) == expected


@pytest.mark.parametrize(
    ("text", "pattern"), [("none here", NUMBER), ("v=inf", r"v=(\w+)"), ("v=x", r"v=(\w)")]
)
def test_parse_number_failures(text: str, pattern: str) -> None:
    """No match, infinity or text raise DecodeError."""
    with pytest.raises(DecodeError):
        parse_number(text, re.compile(pattern))


async def test_command_output_becomes_a_reading(clock: FakeClock) -> None:
    """The command runs without a shell and its output is scaled into a reading."""
    src = CommandSource(
        "meter", [sys.executable, "-c", "print('energy=12345 Wh')"], _spec(r"energy=(\d+)", 0.001)
    )
    [r] = await src.read(clock.now())
    assert (r.meter, r.metric, r.unit, r.kind, r.value) == (
        "meter",
        "energy",
        "kWh",
        Kind.CUMULATIVE,
        12.345,
    )


async def test_command_arguments_are_not_shell_expanded(clock: FakeClock) -> None:
    """Shell syntax in an argument is passed literally (no shell)."""
    src = CommandSource(
        "m", [sys.executable, "-c", "import sys; print(len(sys.argv[1]))", "$(echo 1234)"], _spec()
    )
    [r] = await src.read(clock.now())
    assert r.value == len("$(echo 1234)")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([sys.executable, "-c", "import time; time.sleep(5)"], "did not finish"),
        ([sys.executable, "-c", "import sys; sys.exit(3)"], "exited with 3"),
        ([sys.executable, "-c", "print('no digits')"], "matches nothing"),
        (["/nonexistent/tally-meter-tool"], "No such file"),
    ],
)
async def test_command_failures_are_flagged(
    argv: list[str], fragment: str, clock: FakeClock
) -> None:
    """Timeouts, non-zero exits, no match and a missing program give SourceError."""
    src = CommandSource("m", argv, _spec(), timeout_s=0.5)
    with pytest.raises(SourceError, match=fragment):
        await src.read(clock.now())


async def test_file_source(tmp_path: Path, clock: FakeClock) -> None:
    """A file's content is parsed at each poll; a missing file is a SourceError."""
    path = tmp_path / "counter"
    path.write_text("pulses 1200\n")
    src = FileSource("f", str(path), _spec(r"pulses (\d+)", 0.001))
    [r] = await src.read(clock.now())
    assert r.value == 1.2
    path.unlink()
    with pytest.raises(SourceError):
        await src.read(clock.now())
