"""Console operations sections: enrollments with their QR code, batch conflicts, alerts and
webhook deliveries with redelivery; each through ``authorize`` and the session's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.alerts.rules import AlertRule, Metric
from collector.api import portal_routes
from collector.api.app import create_app
from collector.console.access import SECTIONS, Action, StaffMember, authorize
from collector.devices.broker_fake import MemoryBrokerAccess
from collector.devices.guessing import AttemptLimiter
from collector.devices.service import DeviceService, ServiceSettings
from collector.storage import alert_store, webhook_store
from collector.storage.devices_store import DeviceStore
from tests.collector.billing.conftest import utc
from tests.collector.portal.conftest import Clock, make_account

STAFF_TOKEN = "console-ops-token"
ADMIN = {"Authorization": f"Bearer {STAFF_TOKEN}"}


@pytest.fixture
def app(pool: psycopg_pool.ConnectionPool[Any], clock: Clock) -> Any:
    a = create_app(pool, staff_tokens=[STAFF_TOKEN])
    a.dependency_overrides[portal_routes.get_now] = lambda: clock.now
    a.state.devices = DeviceService(
        DeviceStore(pool),
        MemoryBrokerAccess(),
        ServiceSettings("mqtts://broker.example:8883", "https://tally.example"),
        lambda: clock.now,
        AttemptLimiter(max_failures=3, global_failures=100, window_s=600),
    )
    return a


@pytest.fixture
def as_role(app: Any) -> Iterator[Callable[[str], TestClient]]:
    """A console client signed in with a fresh staff key of the role (``admin``: the token)."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        c = TestClient(app)
        clients.append(c)
        secret = STAFF_TOKEN
        if role != "admin":
            r = c.post("/staff/keys", json={"name": role, "role": role}, headers=ADMIN)
            assert r.status_code == 201, r.text
            secret = r.json()["key"]
        r = c.post("/console/login", data={"token": secret}, follow_redirects=False)
        assert r.status_code == 303
        return c

    yield make
    for c in clients:
        c.close()


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m[1]


def test_sections_are_authorized_by_role() -> None:
    """Enrollments: technician/admin; redelivery: billing/admin; the logs: every reader."""
    tech = StaffMember("t", frozenset({"technician"}))
    billing = StaffMember("b", frozenset({"billing"}))
    ro = StaffMember("r", frozenset({"read-only"}))
    assert authorize(tech, Action.CREATE_ENROLLMENT)
    assert not authorize(billing, Action.VIEW_ENROLLMENTS)
    assert not authorize(ro, Action.CREATE_ENROLLMENT)
    assert authorize(billing, Action.REDELIVER)
    assert not authorize(ro, Action.REDELIVER)
    assert not authorize(tech, Action.REDELIVER)
    assert authorize(ro, Action.VIEW_DELIVERIES)
    assert authorize(tech, Action.VIEW_CONFLICTS)
    paths = {s.path for s in SECTIONS}
    assert {
        "/console/enrollments",
        "/console/conflicts",
        "/console/alerts",
        "/console/webhooks",
    } <= paths


def test_technician_creates_an_enrollment_and_sees_its_qr_code(
    as_role: Callable[[str], TestClient],
) -> None:
    """The code is shown once with an inline SVG QR code; the list shows it pending."""
    tech = as_role("technician")
    page = tech.get("/console/enrollments")
    assert page.status_code == 200
    form = {
        "customer_id": "cust-9",
        "site": "Depot <North>",
        "meter_name": "main",
        "meter_type": "modbus-tcp",
        "interval_s": "60",
        "days": "7",
    }
    assert tech.post("/console/enrollments", data=form).status_code == 403
    r = tech.post("/console/enrollments", data={**form, "csrf": _csrf(page.text)})
    assert r.status_code == 201, r.text
    code = re.search(r'data-code="([^"]+)"', r.text)
    assert code is not None
    assert "<svg" in r.text
    assert "<?xml" not in r.text
    assert "Depot &lt;North&gt;" in r.text
    listing = tech.get("/console/enrollments").text
    assert "cust-9" in listing
    assert code[1] not in listing  # the code is never shown again
    bad = tech.post(
        "/console/enrollments", data={**form, "interval_s": "often", "csrf": _csrf(page.text)}
    )
    assert bad.status_code == 422
    assert 'role="alert"' in bad.text


def test_billing_may_not_enroll_and_read_only_may_not_redeliver(
    as_role: Callable[[str], TestClient],
) -> None:
    bill = as_role("billing")
    assert bill.get("/console/enrollments").status_code == 403
    ro = as_role("read_only")
    page = ro.get("/console/webhooks")
    assert page.status_code == 200
    assert "Redeliver" not in page.text
    assert ro.post("/console/webhooks/1/redeliver", data={"csrf": "x"}).status_code == 403


def test_alerts_and_conflicts_pages(
    as_role: Callable[[str], TestClient], conn: psycopg.Connection[Any]
) -> None:
    acct = make_account(conn, "Alerted BV")
    rule = alert_store.create_rule(
        conn,
        AlertRule(
            0, "customer", acct.customer_id, Metric.AMOUNT, None, Decimal(50), False, "Budget"
        ),
    )
    alert_store.insert_alert(
        conn,
        rule.rule_id,
        acct.customer_id,
        "2026-04",
        value=Decimal("61.5"),
        limit_value=Decimal(50),
        at=utc(2026, 4, 9),
    )
    conn.execute(
        "INSERT INTO batch_conflicts (device_id, seq, received_at, topic, payload,"
        " reading_count, digest, stored_digest, reason) VALUES ('dev-c', 7, now(), 't', 'x',"
        " 3, '\\xabcdef', '\\x010203', 'sequence reused with different readings')"
    )
    ro = as_role("read_only")
    alerts = ro.get("/console/alerts")
    assert alerts.status_code == 200
    assert "Budget" in alerts.text
    assert "61.5" in alerts.text
    conflicts = ro.get("/console/conflicts")
    assert conflicts.status_code == 200
    assert "dev-c" in conflicts.text
    assert "sequence reused with different readings" in conflicts.text


def test_billing_redelivers_a_failed_delivery(
    as_role: Callable[[str], TestClient], conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """A failed delivery gets a Redeliver button; pressing it queues it again (pending)."""
    webhook_store.create_endpoint(
        conn,
        "https://receiver.example/hook",
        "whsec_" + "a" * 32,
        event_types=None,
        customer_id=None,
        description=None,
    )
    webhook_store.emit(conn, "invoice.finalized", {"x": 1}, at=clock.now, customer_id=None)
    (d,) = webhook_store.list_deliveries(conn)
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'failed', last_status = 500 WHERE delivery_id = %s",
        (d.delivery_id,),
    )
    bill = as_role("billing")
    page = bill.get("/console/webhooks")
    assert 'data-status="failed"' in page.text
    assert f"/console/webhooks/{d.delivery_id}/redeliver" in page.text
    url = f"/console/webhooks/{d.delivery_id}/redeliver"
    assert bill.post(url, data={"csrf": "wrong"}).status_code == 403
    r = bill.post(url, data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    (again,) = webhook_store.list_deliveries(conn)
    assert again.status == "pending"
    assert (
        bill.post("/console/webhooks/999999/redeliver", data={"csrf": _csrf(page.text)}).status_code
        == 404
    )
