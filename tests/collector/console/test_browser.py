"""The staff console in a real browser: sign in with a staff token, look through every
section (axe-core: no serious or critical violation, no sideways scroll at phone width), preview
a plan, run a period close, review the drafts and finalize them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest

from collector.alerts.rules import AlertRule, Metric
from collector.api import portal_routes
from collector.api.app import create_app
from collector.billing import accounts
from collector.devices.broker_fake import MemoryBrokerAccess
from collector.devices.guessing import AttemptLimiter
from collector.devices.service import DeviceService, ServiceSettings
from collector.storage import alert_store, webhook_store
from collector.storage.devices_store import DeviceStore
from tests.collector.billing.conftest import put_usage, utc
from tests.collector.portal.conftest import Clock, make_account, make_meter, make_plan
from tests.support.browser import check_page, launch, need_browser, serve

STAFF = "console-browser-token"


@pytest.fixture
def base(
    conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any], clock: Clock
) -> Iterator[str]:
    """Two customers with March usage (100 kWh each), nothing closed yet; now 10 April."""
    need_browser()
    pv = make_plan(conn)
    for name in ("Console One BV", "Console Two BV"):
        acct = make_account(conn, name)
        sid = make_meter(conn, name.split()[1].lower())
        accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
        put_usage(conn, sid, utc(2026, 3, 10), utc(2026, 3, 11, 1), 1.0)
    conn.execute(
        "INSERT INTO dead_letters (received_at, topic, payload, reason)"
        " VALUES (now(), 'tally/v1/x/batch', '\\x00', 'not a batch')"
    )
    app = create_app(pool, staff_tokens=[STAFF])
    app.dependency_overrides[portal_routes.get_now] = lambda: clock.now
    with serve(app) as url:
        yield url


def test_staff_close_and_finalize(base: str, conn: psycopg.Connection[Any]) -> None:
    """Sign in, visit every section, preview a plan, close March, review, finalize."""
    with launch() as browser:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page = ctx.new_page()
        page.goto(base + "/console/")
        check_page(page, "console-signin-desktop")
        page.get_by_label("Staff token").fill(STAFF)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/console/")
        check_page(page, "console-home-desktop")
        for path, name in (
            ("/console/customers", "customers"),
            ("/console/plans", "plans"),
            ("/console/devices", "devices"),
            ("/console/dead-letters", "dead-letters"),
        ):
            page.goto(base + path)
            check_page(page, f"console-{name}-desktop")
        assert "not a batch" in page.inner_text("main")

        page.goto(base + "/console/customers")
        page.get_by_role("link", name="Console One BV").click()
        page.get_by_label("Period (YYYY-MM)").fill("2026-03")
        page.get_by_role("button", name="Preview").click()
        assert page.locator("#preview [data-total]").get_attribute("data-total") == "42.35"
        check_page(page, "console-preview-desktop")

        page.goto(base + "/console/billing?period=2026-03")
        check_page(page, "console-billing-desktop")
        page.get_by_role("button", name="Close 2026-03 (draft invoices)").click()
        page.wait_for_selector("text=Review: 2 draft invoices", timeout=30_000)
        page.wait_for_selector('[data-run-status="done"]', timeout=30_000)
        check_page(page, "console-review-desktop")
        page.get_by_label("I have reviewed the 2 draft invoices above").check()
        page.get_by_role("button", name="Finalize 2026-03").click()
        page.wait_for_selector("text=Review: 0 draft invoices (2 final)", timeout=30_000)

        phone = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
        phone.add_cookies(ctx.cookies())
        small = phone.new_page()
        small.goto(base + "/console/billing?period=2026-03")
        check_page(small, "console-billing-phone")
    rows = conn.execute("SELECT status, count(*) FROM invoices GROUP BY status").fetchall()
    assert rows == [("final", 2)]


@pytest.fixture
def ops_base(
    conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any], clock: Clock
) -> Iterator[str]:
    """The console with device enrollment (in-package fake broker), an alert, a batch conflict
    and a failed webhook delivery."""
    need_browser()
    acct = make_account(conn, "Ops BV")
    rule = alert_store.create_rule(
        conn,
        AlertRule(0, "customer", acct.customer_id, Metric.AMOUNT, None, Decimal(50), False, "Cap"),
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
    webhook_store.create_endpoint(
        conn,
        "https://receiver.example/hook",
        "whsec_" + "a" * 32,
        event_types=None,
        customer_id=None,
        description=None,
    )
    webhook_store.emit(conn, "invoice.finalized", {"x": 1}, at=clock.now, customer_id=None)
    conn.execute("UPDATE webhook_deliveries SET status = 'failed', last_status = 500")
    app = create_app(pool, staff_tokens=[STAFF])
    app.dependency_overrides[portal_routes.get_now] = lambda: clock.now
    app.state.devices = DeviceService(
        DeviceStore(pool),
        MemoryBrokerAccess(),
        ServiceSettings("mqtts://broker.example:8883", "https://tally.example"),
        lambda: clock.now,
        AttemptLimiter(max_failures=3, global_failures=100, window_s=600),
    )
    with serve(app) as url:
        yield url


def test_operations_sections(ops_base: str, conn: psycopg.Connection[Any]) -> None:
    """Enrollments (a code made in the browser, its QR code shown), batch conflicts, alerts
    and webhook deliveries (redelivered with the button) pass axe at desktop and 390 px."""
    base = ops_base
    with launch() as browser:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page = ctx.new_page()
        page.goto(base + "/console/")
        page.get_by_label("Staff token").fill(STAFF)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/console/")
        for link in ("Enrollments", "Batch conflicts", "Alerts", "Webhook deliveries"):
            assert page.get_by_role("link", name=link).count() >= 1, link

        page.goto(base + "/console/enrollments")
        check_page(page, "console-enrollments-desktop")
        page.get_by_label("Customer reference").fill("cust-42")
        page.get_by_label("Site").fill("Depot North")
        page.get_by_role("button", name="Create enrollment code").click()
        page.wait_for_selector("#issued")
        assert page.locator("#issued figure.qr svg").count() == 1
        check_page(page, "console-enrollment-qr-desktop")
        pages = {
            "/console/enrollments": "enrollments",
            "/console/conflicts": "conflicts",
            "/console/alerts": "alerts",
            "/console/webhooks": "webhooks",
        }
        for path, name in pages.items():
            page.goto(base + path)
            check_page(page, f"console-{name}-desktop")
        page.goto(base + "/console/webhooks")
        assert page.locator('[data-status="failed"]').count() == 1
        page.get_by_role("button", name=re.compile("^Redeliver")).click()
        page.wait_for_url(base + "/console/webhooks")
        assert page.locator('[data-status="pending"]').count() == 1

        phone = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
        phone.add_cookies(ctx.cookies())
        small = phone.new_page()
        for path, name in pages.items():
            small.goto(base + path)
            check_page(small, f"console-{name}-phone")
        small.goto(base + "/console/enrollments")
        small.get_by_label("Customer reference").fill("cust-43")
        small.get_by_label("Site").fill("Depot South")
        small.get_by_role("button", name="Create enrollment code").click()
        small.wait_for_selector("#issued")
        check_page(small, "console-enrollment-qr-phone")
    assert conn.execute(
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
    ).fetchone() == (1,)
