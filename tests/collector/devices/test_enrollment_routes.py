"""Enrollment, redemption, remote config and decommissioning through the API (real database,
in-package fake broker)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from collector.devices.broker_fake import MemoryBrokerAccess
from collector.storage.database import Pool

from .api_support import METERS, SECRET, Clock
from .api_support import enroll_code_doc as _enroll


def test_enrollment_gives_a_code_and_qr_codes(client: TestClient) -> None:
    out = _enroll(client)
    code = str(out["code"])
    assert len(code) == 11
    assert code[5] == "-"
    assert base64.b64decode(str(out["qr_png_base64"])).startswith(b"\x89PNG\r\n\x1a\n")
    assert "<svg" in str(out["qr_svg"])
    assert code in str(out["qr_text"])
    assert "tally.example" in str(out["qr_text"])
    pending = client.get("/devices/enrollments").json()
    assert [p["enrollment_id"] for p in pending] == [out["enrollment_id"]]
    assert "code" not in pending[0]


def test_code_is_stored_only_as_a_digest(client: TestClient, pool: Pool) -> None:
    code = str(_enroll(client)["code"])
    with pool.connection() as conn:
        row = conn.execute("SELECT * FROM device_enrollments").fetchone()
    assert row is not None
    assert not any(code.replace("-", "") in str(v) or code in str(v) for v in row)


def test_redeem_registers_device_and_creates_broker_credentials(
    client: TestClient, broker: MemoryBrokerAccess
) -> None:
    code = str(_enroll(client)["code"])
    r = client.post("/enroll", json={"code": code.lower().replace("-", " "), "secret": SECRET,
                                     "installation": "inst-1"})
    assert r.status_code == 200, r.text
    got = r.json()
    dev = got["device_id"]
    assert got["username"] == dev
    assert got["broker_url"] == "mqtts://broker.example:8883"
    assert got["topics"]["readings"] == f"tally/v1/{dev}/readings"
    assert got["topics"]["config"] == f"tally/v1/{dev}/config"
    assert got["topics"]["ack"] == f"tally/v1/{dev}/ack"
    assert got["sources"] == [{"type": "simulated", "name": "main", "interval_s": 15.0,
                               "profile": "office"}]
    assert broker.passwords == {dev: SECRET}
    config = json.loads(broker.retained[f"tally/v1/{dev}/config"])
    assert config["version"] == 1
    assert config["sources"] == got["sources"]
    assert client.get(f"/devices/registry/{dev}").json()["state"] == "active"


def test_used_code_is_refused_but_a_retry_with_the_same_secret_is_answered(
    client: TestClient,
) -> None:
    code = str(_enroll(client)["code"])
    first = client.post("/enroll", json={"code": code, "secret": SECRET})
    retry = client.post("/enroll", json={"code": code, "secret": SECRET})
    assert retry.status_code == 200
    assert retry.json()["device_id"] == first.json()["device_id"]
    replay = client.post("/enroll", json={"code": code, "secret": SECRET + "x"})
    assert replay.status_code == 409
    assert replay.json()["detail"]["reason"] == "used"
    assert len(client.get("/devices/registry").json()) == 1


def test_expired_code_is_refused(client: TestClient, clock: Clock) -> None:
    code = str(_enroll(client, expires_in_s=3600)["code"])
    clock.now += timedelta(hours=1)
    r = client.post("/enroll", json={"code": code, "secret": SECRET})
    assert r.status_code == 410
    assert r.json()["detail"]["reason"] == "expired"
    assert client.get("/devices/registry").json() == []


def test_guessing_is_rate_limited(client: TestClient) -> None:
    code = str(_enroll(client)["code"])
    statuses = [client.post("/enroll", json={"code": "ABCDE-FGHJK", "secret": SECRET}).status_code
                for _ in range(3)]
    assert statuses == [404, 404, 404]
    limited = client.post("/enroll", json={"code": code, "secret": SECRET})
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"code": "short", "secret": SECRET}, 400),
        ({"code": "ABCDE-FGHJK", "secret": "too-short"}, 400),
        ({"code": "ABCDE-FGHJK", "secret": "has spaces in it 0123456789"}, 400),
        ({"code": "ABCDE-FGHJK"}, 422),
    ],
)
def test_bad_redemptions_get_clear_4xx(client: TestClient, body: dict[str, str],
                                       status: int) -> None:
    assert client.post("/enroll", json=body).status_code == status


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": "c", "site": "s", "meters": []},
        {"customer_id": "c", "site": "s", "meters": METERS, "expires_in_s": 10},
        {"customer_id": "c", "site": "s", "meters": METERS * 2},
        {"customer_id": "c", "site": "s", "meters": METERS, "purpose": "reenroll"},
        {"customer_id": "c", "site": "s", "meters": METERS, "purpose": "reenroll",
         "target_device": "dev-missing"},
        {"customer_id": "c", "site": "s",
         "meters": [{"name": "bad name", "type": "x", "interval_s": 1}]},
    ],
)
def test_bad_enrollments_get_clear_4xx(client: TestClient, body: dict[str, object]) -> None:
    r = client.post("/devices/enrollments", json=body)
    assert 400 <= r.status_code < 500, r.text


def test_decommission_revokes_at_the_broker(
    client: TestClient, broker: MemoryBrokerAccess
) -> None:
    code = str(_enroll(client)["code"])
    dev = client.post("/enroll", json={"code": code, "secret": SECRET}).json()["device_id"]
    r = client.post(f"/devices/registry/{dev}/decommission")
    assert r.status_code == 200
    assert r.json()["state"] == "decommissioned"
    assert broker.revoked == [dev]
    assert dev not in broker.passwords
    assert broker.retained[f"tally/v1/{dev}/config"] == b""  # retained config cleared
    assert broker.retained[f"tally/v1/{dev}/ack"] == b""  # and the last acknowledgement
    assert client.post(f"/devices/registry/{dev}/decommission").status_code == 409
    assert client.post("/devices/registry/nope/decommission").status_code == 404


def test_remote_config_is_versioned_and_published_retained(
    client: TestClient, broker: MemoryBrokerAccess
) -> None:
    code = str(_enroll(client)["code"])
    dev = client.post("/enroll", json={"code": code, "secret": SECRET}).json()["device_id"]
    meters = [{"name": "main", "type": "simulated", "interval_s": 5},
              {"name": "pump", "type": "simulated", "interval_s": 60}]
    r = client.put(f"/devices/registry/{dev}/config", json={"meters": meters})
    assert r.status_code == 200
    assert r.json()["config_version"] == 2
    doc = json.loads(broker.retained[f"tally/v1/{dev}/config"])
    assert doc["version"] == 2
    assert [s["name"] for s in doc["sources"]] == ["main", "pump"]
    assert doc["sources"][0]["interval_s"] == 5


def test_reenrollment_keeps_the_device_id_with_a_new_secret(
    client: TestClient, broker: MemoryBrokerAccess
) -> None:
    code = str(_enroll(client)["code"])
    dev = client.post("/enroll", json={"code": code, "secret": SECRET}).json()["device_id"]
    again = str(_enroll(client, meters=[], purpose="reenroll", target_device=dev)["code"])
    r = client.post("/enroll", json={"code": again, "secret": "a-new-secret-after-wipe-0123"})
    assert r.status_code == 200
    assert r.json()["device_id"] == dev
    assert broker.passwords[dev] == "a-new-secret-after-wipe-0123"
    assert len(client.get("/devices/registry").json()) == 1


def test_replacement_moves_meters_and_revokes_the_old_device(
    client: TestClient, broker: MemoryBrokerAccess
) -> None:
    code = str(_enroll(client)["code"])
    old = client.post("/enroll", json={"code": code, "secret": SECRET}).json()["device_id"]
    rep = str(_enroll(client, meters=[], purpose="replace", target_device=old)["code"])
    r = client.post("/enroll", json={"code": rep, "secret": "replacement-secret-0123456789"})
    new = r.json()["device_id"]
    assert new != old
    assert r.json()["sources"][0]["name"] == "main"
    assert broker.revoked == [old]
    listed = {d["device_id"]: d for d in client.get("/devices/registry").json()}
    assert listed[old]["state"] == "decommissioned"
    assert listed[old]["replaced_by"] == new


def test_broker_failure_rolls_back_and_the_code_stays_usable(
    client: TestClient, broker: MemoryBrokerAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector.errors import BrokerAccessError  # noqa: PLC0415

    code = str(_enroll(client)["code"])

    def refuse(device_id: str, password: str) -> None:
        raise BrokerAccessError("broker refused createClient: test", command="createClient")

    monkeypatch.setattr(broker, "provision", refuse)
    r = client.post("/enroll", json={"code": code, "secret": SECRET})
    assert r.status_code == 502
    assert client.get("/devices/registry").json() == []
    monkeypatch.undo()
    r = client.post("/enroll", json={"code": code, "secret": SECRET})
    assert r.status_code == 200
    assert broker.passwords == {r.json()["device_id"]: SECRET}


def test_a_used_code_never_revives_a_decommissioned_device(
    client: TestClient, broker: MemoryBrokerAccess
) -> None:
    code = str(_enroll(client)["code"])
    dev = client.post("/enroll", json={"code": code, "secret": SECRET}).json()["device_id"]
    assert client.post(f"/devices/registry/{dev}/decommission").status_code == 200
    retry = client.post("/enroll", json={"code": code, "secret": SECRET})
    assert retry.status_code == 409
    assert dev not in broker.passwords


def test_retry_of_a_replacement_answers_the_new_device(client: TestClient) -> None:
    code = str(_enroll(client)["code"])
    old = client.post("/enroll", json={"code": code, "secret": SECRET}).json()["device_id"]
    rep = str(_enroll(client, meters=[], purpose="replace", target_device=old)["code"])
    body = {"code": rep, "secret": "replacement-secret-0123456789"}
    first = client.post("/enroll", json=body).json()["device_id"]
    again = client.post("/enroll", json=body)
    assert again.status_code == 200
    assert again.json()["device_id"] == first != old
