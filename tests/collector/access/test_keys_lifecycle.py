"""Staff keys through the API and the CLI: roles, expiry, revocation without restart, the
open loopback mode, configured tokens, and the audit log of every state-changing call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from collector.access import Role
from collector.api.access_gate import StaffGate
from collector.api.app import create_app
from collector.api.staff_auth import hash_token
from collector.cli import main
from collector.storage import access_store
from collector.storage.database import Pool
from tests.collector.access.conftest import bearer, make_key


def test_admin_creates_a_key_that_works_with_its_role(
    client: TestClient, keys: dict[Role, str]
) -> None:
    """POST /staff/keys returns the key once; it authenticates with the role given; the list
    never shows secrets."""
    admin = bearer(keys[Role.ADMIN])
    r = client.post("/staff/keys", json={"name": "Ana (billing)", "role": "billing"},
                    headers=admin)
    assert r.status_code == 201
    new = r.json()
    assert new["key"].startswith(f"tally_{new['key_id']}_")
    me = client.get("/staff/me", headers=bearer(new["key"])).json()
    assert (me["role"], me["key_id"]) == ("billing", new["key_id"])
    assert client.get("/staff/keys", headers=bearer(new["key"])).status_code == 403
    listed = client.get("/staff/keys", headers=admin)
    assert new["key_id"] in [k["key_id"] for k in listed.json()["items"]]
    assert new["key"] not in listed.text


def test_revocation_applies_at_once_in_this_process(
    client: TestClient, keys: dict[Role, str], pool: Pool
) -> None:
    """DELETE /staff/keys/{id}: the next call with that key is a 401."""
    secret, key_id = make_key(pool, Role.TECHNICIAN)
    assert client.get("/devices", headers=bearer(secret)).status_code == 200
    r = client.delete(f"/staff/keys/{key_id}", headers=bearer(keys[Role.ADMIN]))
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    assert client.get("/devices", headers=bearer(secret)).status_code == 401
    assert client.delete("/staff/keys/0123456789ab",
                         headers=bearer(keys[Role.ADMIN])).status_code == 404


def test_revocation_elsewhere_applies_within_the_cache_time(pool: Pool) -> None:
    """A key revoked by another process (here: straight in the database) is refused as soon
    as the cache entry is older than ``key_cache_s``; no restart."""
    secret, key_id = make_key(pool, Role.READ_ONLY)
    app = create_app(pool, require_staff_key=True, key_cache_s=5)
    gate: StaffGate = app.state.staff_gate
    t = [1000.0]
    gate.monotonic = lambda: t[0]
    client = TestClient(app)
    assert client.get("/devices", headers=bearer(secret)).status_code == 200
    with pool.connection() as conn:
        access_store.revoke_key(conn, key_id, datetime.now(UTC))
    t[0] += 4.0
    assert client.get("/devices", headers=bearer(secret)).status_code == 200  # cached
    t[0] += 1.0
    assert client.get("/devices", headers=bearer(secret)).status_code == 401


def test_expired_key_is_refused(client: TestClient, pool: Pool) -> None:
    """A key past its expiry is a 401, even while it is cached."""
    now = datetime.now(UTC)
    secret, _ = make_key(pool, Role.ADMIN, now=now - timedelta(days=2),
                         expires_at=now - timedelta(seconds=1))
    r = client.get("/devices", headers=bearer(secret))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_key_requests_are_validated(client: TestClient, keys: dict[Role, str]) -> None:
    """Unknown roles, empty names, control characters and negative expiry are 422."""
    admin = bearer(keys[Role.ADMIN])
    for body in ({"name": "x", "role": "root"}, {"name": "", "role": "admin"},
                 {"name": "a\x00b", "role": "admin"},
                 {"name": "x", "role": "admin", "expires_in_days": -1},
                 {"name": "x", "role": "admin", "expires_in_days": 1e308}):
        assert client.post("/staff/keys", json=body, headers=admin).status_code == 422, body


def test_open_loopback_api_closes_once_a_key_exists(pool: Pool) -> None:
    """Without tokens or keys the API is open (development on 127.0.0.1); creating the first
    key enforces keys from then on."""
    client = TestClient(create_app(pool))
    assert client.get("/devices").status_code == 200
    r = client.post("/staff/keys", json={"name": "first admin", "role": "admin"})
    assert r.status_code == 201
    assert client.get("/devices").status_code == 401
    assert client.get("/devices", headers=bearer(r.json()["key"])).status_code == 200
    # A wrong key is refused even in open mode.
    other = TestClient(create_app(pool))
    assert other.get("/devices", headers=bearer("nonsense")).status_code == 401


def test_configured_token_acts_as_admin(pool: Pool) -> None:
    """Tokens from ``api.staff_tokens`` keep working, with the admin role."""
    client = TestClient(create_app(pool, staff_tokens=[hash_token("legacy-token")]))
    r = client.get("/staff/me", headers=bearer("legacy-token"))
    assert r.status_code == 200
    assert r.json()["role"] == "admin"
    assert client.get("/staff/me", headers=bearer("other")).status_code == 401


def test_audit_log_records_every_state_changing_call(
    client: TestClient, keys: dict[Role, str]
) -> None:
    """Who, what, when, outcome: successes, refusals and rejected bodies; reads are not
    logged; only admins read the log."""
    admin, billing, reader = (bearer(keys[r]) for r in (Role.ADMIN, Role.BILLING,
                                                         Role.READ_ONLY))
    created = client.post("/staff/keys", json={"name": "n", "role": "read_only"},
                          headers=admin).json()
    client.post("/billing/customers", json={}, headers=billing)          # 422
    client.put("/meters/1/config", json={}, headers=reader)              # 403
    client.post("/billing/plans", json={})                               # 401
    client.get("/devices", headers=reader)                               # read: not logged
    assert client.get("/audit", headers=billing).status_code == 403
    items = client.get("/audit", headers=admin).json()["items"]
    got = [(e["method"], e["path"], e["status"], e["outcome"], e["actor"]) for e in items]
    billing_id = keys[Role.BILLING].split("_")[1]
    reader_id = keys[Role.READ_ONLY].split("_")[1]
    assert got[:4] == [
        ("POST", "/billing/plans", 401, "refused", "anonymous"),
        ("PUT", "/meters/1/config", 403, "refused", f"key:{reader_id}"),
        ("POST", "/billing/customers", 422, "rejected", f"key:{billing_id}"),
        ("POST", "/staff/keys", 201, "ok", f"key:{keys[Role.ADMIN].split('_')[1]}"),
    ]
    assert items[3]["target"] == f"key:{created['key_id']}"
    assert items[3]["role"] == "admin"
    mine = client.get("/audit", params={"actor": f"key:{reader_id}"}, headers=admin).json()
    assert [e["path"] for e in mine["items"]] == ["/meters/1/config"]


def test_authentication_runs_before_the_body_is_read(
    client: TestClient, keys: dict[Role, str]
) -> None:
    """An unauthenticated or too-weak caller gets 401/403 even for a huge body; an allowed
    one gets a clear 413 above the limit, also for a chunked body without a length."""
    big = b"x" * (2 << 20)
    assert client.post("/billing/plans", content=big).status_code == 401
    assert client.post("/billing/plans", content=big,
                       headers=bearer(keys[Role.TECHNICIAN])).status_code == 403
    r = client.post("/billing/plans", content=big, headers=bearer(keys[Role.BILLING]))
    assert r.status_code == 413
    assert "larger than" in r.json()["detail"]

    def chunks() -> object:
        for _ in range(3):
            yield b"y" * (1 << 19)

    r = client.post("/billing/plans", content=chunks(),  # type: ignore[arg-type]
                    headers=bearer(keys[Role.BILLING]))
    assert r.status_code == 413


def test_cli_keys_create_list_revoke(
    pool: Pool, pg_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], app_factory: Callable[..., FastAPI],
) -> None:
    """`tally-collector keys create/list/revoke` manage keys the API accepts and refuses;
    each change is audited as the CLI."""
    monkeypatch.setenv("TALLY_DATABASE_URL", pg_url)
    assert main(["keys", "create", "--name", "Tom (field)", "--role", "technician",
                 "--expires-in-days", "30"]) == 0
    out = capsys.readouterr().out
    secret = out.split("shown once): ")[1].split()[0]
    key_id = secret.split("_")[1]
    client = TestClient(app_factory(key_cache_s=0))
    assert client.get("/staff/me", headers=bearer(secret)).json()["role"] == "technician"
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing
    assert secret not in listing
    assert main(["keys", "revoke", key_id]) == 0
    assert client.get("/staff/me", headers=bearer(secret)).status_code == 401
    assert main(["keys", "revoke", "0123456789ab"]) == 2
    with pool.connection() as conn:
        audit = access_store.list_audit(conn, limit=10, actor="cli")
    assert [(e.path, e.target) for e in audit] == [("keys revoke", f"key:{key_id}"),
                                                    ("keys create", f"key:{key_id}")]
