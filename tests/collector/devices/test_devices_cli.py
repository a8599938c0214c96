"""``tally-collector devices …`` against the real database (and the real broker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.cli import main
from collector.storage.migrate import migrate
from tests.support.dynsec_broker import ADMIN_USER, DynsecBroker

from .mqtt_probe import Probe


def test_enroll_writes_code_and_qr_files(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    migrate(pg_url, use_timescale=False)
    monkeypatch.setenv("TALLY_DATABASE_URL", pg_url)
    meters = tmp_path / "meters.json"
    meters.write_text(json.dumps([{"name": "main", "type": "modbus-tcp", "interval_s": 60,
                                   "host": "192.168.1.50"}]))
    qr = tmp_path / "depot4"
    assert main(["devices", "enroll", "--customer", "cust-1", "--site", "Depot 4",
                 "--meters", str(meters), "--qr", str(qr)]) == 0
    out = capsys.readouterr().out
    assert "code (give to the technician; shown once): " in out
    assert (tmp_path / "depot4.png").read_bytes().startswith(b"\x89PNG")
    assert "<svg" in (tmp_path / "depot4.svg").read_text()
    assert main(["devices", "list"]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["devices", "enroll", "--customer", "c", "--site", "s",
                 "--meters", str(bad)]) == 2


def test_broker_bootstrap_creates_the_collector_account(
    pg_url: str, dynsec_broker: DynsecBroker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TALLY_MQTT_URL",
                       f"mqtt://collector:collector-pw-0123456789@127.0.0.1:{dynsec_broker.port}")
    monkeypatch.setenv("TALLY_DEVICES_BROKER_ADMIN_URL",
                       f"mqtt://{ADMIN_USER}:{dynsec_broker.admin_password}"
                       f"@127.0.0.1:{dynsec_broker.port}")
    assert main(["devices", "broker-bootstrap"]) == 0
    probe = Probe(dynsec_broker.port, "collector", "collector-pw-0123456789")
    rc = probe.connect()
    assert rc is not None
    assert not rc.is_failure
    assert not probe.subscribe("$share/collectors/tally/v1/+/readings").is_failure
    probe.close()
