"""`tally-agent enroll` against a scripted collector: files, retries, refusals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from agent.config import load_config
from agent.enroll import EnrollRequest, enroll
from agent.errors import EnrollError

ANSWER = {"device_id": "dev-1", "username": "dev-1", "broker_url": "mqtts://b.example:8883",
          "topics": {}, "config_version": 1, "customer_id": "c", "site": "s",
          "sources": [{"type": "simulated-energy", "name": "main", "interval_s": 60.0}]}


def _req(tmp: Path) -> EnrollRequest:
    return EnrollRequest("https://collector.example", "K7QF2-MX9PD", tmp / "agent.toml",
                         tmp / "state")


def test_a_lost_answer_is_retried_with_the_same_secret(tmp_path: Path) -> None:
    secrets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        secrets.append(json.loads(request.content)["secret"])
        if len(secrets) == 1:
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(200, json=ANSWER)

    with pytest.raises(EnrollError):
        enroll(_req(tmp_path), transport=httpx.MockTransport(handler))
    out = enroll(_req(tmp_path), transport=httpx.MockTransport(handler))
    assert out.device_id == "dev-1"
    assert secrets[0] == secrets[1]
    assert len(secrets[0]) >= 40
    password = tmp_path / "state" / "broker.password"
    assert password.read_text() == secrets[0]
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "agent.toml").stat().st_mode) == 0o600
    assert not (tmp_path / "state" / "enroll.pending.json").exists()
    cfg = load_config(tmp_path / "agent.toml", {})
    assert cfg.broker.credentials == ("dev-1", secrets[0])
    assert cfg.sources[0].name == "main"


def test_an_enrolled_device_does_not_enroll_again(tmp_path: Path) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json=ANSWER)

    enroll(_req(tmp_path), transport=httpx.MockTransport(handler))
    again = enroll(_req(tmp_path), transport=httpx.MockTransport(handler))
    assert again.already_enrolled
    assert calls == [1]


def test_refusals_carry_the_collectors_reason(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(410, json={"detail": {"reason": "expired",
                                                    "message": "this enrollment code has expired"}})

    with pytest.raises(EnrollError) as err:
        enroll(_req(tmp_path), transport=httpx.MockTransport(handler))
    assert err.value.status == 410
    assert err.value.reason == "expired"
    assert "expired" in str(err.value)
    assert not (tmp_path / "agent.toml").exists()
