"""Secrets are never printed (URLs with a password are masked) and the agent's private files
are owner-only (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.buffer import SqliteBuffer
from agent.private_files import make_private, write_private
from agent.redact import redact_text, redact_url
from collector.config import load_config
from collector.errors import ConfigError


@pytest.mark.parametrize(("url", "masked"), [
    ("mqtts://dev-1:s3cr%40t@broker.example:8883", "mqtts://dev-1:***@broker.example:8883"),
    ("postgresql://tally:pw@db:5432/tally", "postgresql://tally:***@db:5432/tally"),
    ("mqtt://:onlypw@[::1]:1883", "mqtt://:***@[::1]:1883"),
    ("mqtt://broker:1883", "mqtt://broker:1883"),
    ("mqtt://user@broker", "mqtt://user@broker"),
])
def test_redact_url(url: str, masked: str) -> None:
    assert redact_url(url) == masked


def test_redact_text_masks_urls_and_libpq_passwords() -> None:
    text = ("cannot connect to mqtt://a:hunter2@h:1883 nor host=db password='x y' user=u "
            "nor password=abc")
    out = redact_text(text)
    assert "hunter2" not in out
    assert "x y" not in out
    assert "abc" not in out
    assert "mqtt://a:***@h:1883" in out


def test_config_error_does_not_print_the_broker_password() -> None:
    """A bad broker URL with a password is reported with the password masked."""
    with pytest.raises(ConfigError) as err:
        load_config(None, {"TALLY_MQTT_URL": "http://user:topsecret@broker:1883"})
    assert "topsecret" not in str(err.value)
    assert "user:***@broker" in str(err.value)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_files_are_0600(tmp_path: Path) -> None:
    """New and existing files become owner-only; written files are 0600 from the start."""
    loose = tmp_path / "loose"
    loose.write_bytes(b"x")
    loose.chmod(0o644)
    make_private(loose)
    assert _mode(loose) == 0o600
    make_private(tmp_path / "new" / "file")
    assert _mode(tmp_path / "new" / "file") == 0o600
    write_private(tmp_path / "cred.json", b"{}")
    assert _mode(tmp_path / "cred.json") == 0o600
    assert (tmp_path / "cred.json").read_bytes() == b"{}"


async def test_agent_buffer_files_are_0600(tmp_path: Path) -> None:
    """The SQLite buffer and its WAL/SHM files are readable by the agent's user only, even
    under a permissive umask."""
    old = os.umask(0o000)
    try:
        buf = await SqliteBuffer.open(tmp_path / "buf.db", device_id="d1", now_ms=0)
        try:
            files = [p for p in tmp_path.iterdir() if p.name.startswith("buf.db")]  # noqa: ASYNC240 - a test
            modes = {p.name: _mode(p) for p in files}
        finally:
            await buf.close()
    finally:
        os.umask(old)
    assert "buf.db-wal" in modes
    assert set(modes.values()) == {0o600}, modes
