"""The portal in a real browser (Debian's Chromium driven by Playwright): sign in with a
one-time code, chart totals against the JSON API, the resolution switch, a PDF download,
customer isolation, no sideways scroll and readable chart text at phone width, and zero
serious or critical axe-core violations on every page. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool
import pytest

from collector.api import portal_routes
from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from tests.collector.billing.conftest import put_usage, utc
from tests.collector.portal.conftest import Clock, make_account, make_meter, make_plan
from tests.support.browser import check_page, launch, need_browser, serve

STAFF = "browser-staff-token"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@dataclass(frozen=True)
class Site:
    base: str
    a: int
    b: int
    meter_a: int
    meter_b: int
    invoice_a: int
    invoice_b: int


@pytest.fixture
def site(
    conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any], clock: Clock
) -> Iterator[Site]:
    """Two customers (A in Amsterdam, English; B Dutch) with March invoiced and April so far
    (10 April 12:00 UTC): A's April has a day without data (5 April) and an estimated day."""
    need_browser()
    pv = make_plan(conn)
    a = make_account(conn, "Alpha Windows BV", tz="Europe/Amsterdam")
    b = make_account(conn, "Bravo Bakkerij", tz="Europe/Amsterdam")
    conn.execute("UPDATE customers SET language = 'nl' WHERE customer_id = %s", (b.customer_id,))
    ma, mb = make_meter(conn, "alpha-1"), make_meter(conn, "bravo-1")
    accounts.assign_meter(conn, a.customer_id, ma, pv, utc(2026, 3, 1))
    accounts.assign_meter(conn, b.customer_id, mb, pv, utc(2026, 3, 1))
    for sid in (ma, mb):
        put_usage(conn, sid, utc(2026, 2, 28, 23), utc(2026, 4, 3, 22), 0.25)
    put_usage(conn, ma, utc(2026, 4, 3, 22), utc(2026, 4, 4, 22), 0.5, estimated=0.5)
    put_usage(conn, ma, utc(2026, 4, 5, 22), utc(2026, 4, 10, 12), 0.3)
    close_period(pool, PeriodKey(2026, 3), clock.now)
    finalize_period(pool, PeriodKey(2026, 3), clock.now)
    close_period(pool, PeriodKey(2026, 4), clock.now)  # April's draft: the running charge
    conn.execute(  # the newest reading: the dashboard's "Data as of"
        "INSERT INTO readings (series_id, ts, value) VALUES (%s, '2026-04-10T10:04:31Z', 1)",
        (ma,),
    )
    inv = dict(
        conn.execute(
            "SELECT customer_id, invoice_id FROM invoices WHERE status = 'final'"
        ).fetchall()
    )
    app = create_app(pool, staff_tokens=[STAFF])
    app.dependency_overrides[portal_routes.get_now] = lambda: clock.now
    with serve(app) as base:
        yield Site(
            base, a.customer_id, b.customer_id, ma, mb, inv[a.customer_id], inv[b.customer_id]
        )


@pytest.fixture
def browser() -> Iterator[Any]:
    with launch() as b:
        yield b


def _context(browser: Any, viewport: dict[str, int]) -> Any:
    # bypass_csp: the pages allow no scripts; only the injected axe-core needs one
    return browser.new_context(viewport=viewport, bypass_csp=True, accept_downloads=True)


def _sign_in(page: Any, site: Site, customer_id: int) -> None:
    """Staff make a code (staff API); the customer opens the link and presses the button."""
    made = page.request.post(
        f"{site.base}/billing/customers/{customer_id}/portal-sign-in",
        headers={"Authorization": f"Bearer {STAFF}"},
    ).json()
    page.goto(site.base + made["link"])
    page.get_by_role("button").click()
    page.wait_for_url(f"{site.base}/portal/")


def _check(page: Any, name: str) -> None:
    check_page(page, name)


def _bars(page: Any) -> list[float]:
    values: list[float] = page.evaluate(
        "() => [...document.querySelectorAll('svg.chart g.bar[data-q]')]"
        ".map(g => parseFloat(g.dataset.q))"
    )
    return values


@pytest.mark.parametrize(("viewport", "tag"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_customer_journey(browser: Any, site: Site, viewport: dict[str, int], tag: str) -> None:
    """Sign in, dashboard, meter chart vs API at day/hour/15 min, invoice list, PDF download."""
    ctx = _context(browser, viewport)
    page = ctx.new_page()
    page.goto(site.base + "/portal/")
    _check(page, f"portal-signin-{tag}")
    _sign_in(page, site, site.a)
    assert "Alpha Windows BV" in page.inner_text("header")
    assert "Data as of 10 Apr 2026 12:04:31" in page.inner_text("main")  # Amsterdam time
    assert page.locator("#forecast[data-slot]").count() == 1
    assert page.locator("#alerts[data-slot]").count() == 1
    assert "Running charge (draft)" in page.inner_text("main")
    assert page.get_by_role("columnheader", name="Time of use").count() == 1
    _check(page, f"portal-dashboard-{tag}")
    nodata = page.locator("svg.chart g.bar.no_data").count()
    future = page.locator("svg.chart g.bar.future").count()
    assert nodata >= 1  # 5 April
    assert future == 20  # 11..30 April

    page.goto(f"{site.base}/portal/meters/{site.meter_a}?month=2026-04")
    _check(page, f"portal-meter-month-{tag}")
    api = ctx.request.get(
        f"{site.base}/portal/consumption/meters/{site.meter_a}",
        params={"from": "2026-03-31T22:00Z", "to": "2026-04-30T22:00Z", "resolution": "1d"},
    ).json()
    assert sum(_bars(page)) == pytest.approx(api["total"], abs=1e-9)
    assert [b["state"] for b in api["buckets"]][4] == "no_data"
    assert "no data" in page.inner_text("table")

    page.get_by_role("link", name="Per hour").click()
    page.wait_for_load_state()
    assert page.locator('a[data-res="1h"][aria-current="page"]').count() == 1
    day = page.url.split("day=")[1][:10]
    assert day == "2026-04-10"  # today, in the customer's zone
    hourly = ctx.request.get(
        f"{site.base}/portal/consumption/meters/{site.meter_a}",
        params={"from": "2026-04-09T22:00Z", "to": "2026-04-10T22:00Z", "resolution": "1h"},
    ).json()
    assert page.locator("svg.chart g.bar").count() == 24
    assert sum(_bars(page)) == pytest.approx(hourly["total"], abs=1e-9)
    _check(page, f"portal-meter-hours-{tag}")

    page.get_by_role("link", name="Per 15 minutes").click()
    page.wait_for_load_state()
    assert page.locator("svg.chart g.bar").count() == 96
    assert sum(_bars(page)) == pytest.approx(hourly["total"], abs=1e-9)
    _check(page, f"portal-meter-15m-{tag}")

    page.goto(site.base + "/portal/invoices")
    _check(page, f"portal-invoices-{tag}")
    page.locator(f'a[href="/portal/invoices/{site.invoice_a}"]').first.click()
    page.wait_for_load_state()
    _check(page, f"portal-invoice-{tag}")
    with page.expect_download() as dl:
        page.locator('a[data-format="pdf"]').click()
    path = dl.value.path()
    assert path is not None
    with open(path, "rb") as fh:
        assert fh.read(5) == b"%PDF-"
    ctx.close()


def test_dutch_customer_reads_dutch(browser: Any, site: Site) -> None:
    """Customer B (nl) gets Dutch words and Dutch amounts, also at phone width."""
    ctx = _context(browser, PHONE)
    page = ctx.new_page()
    _sign_in(page, site, site.b)
    assert page.locator("html").get_attribute("lang") == "nl"
    assert "Uw verbruik" in page.inner_text("h1")
    _check(page, "portal-dashboard-nl-phone")
    page.goto(f"{site.base}/portal/invoices/{site.invoice_b}")
    assert "Factuur" in page.inner_text("h1")
    main = page.inner_text("main")
    assert "Totaal" in main
    assert re.search(r"€\xa0\d{1,3}(\.\d{3})*,\d{2}", main)  # Dutch amount: € 236,56
    _check(page, "portal-invoice-nl-phone")
    ctx.close()


def test_customer_a_never_sees_b(browser: Any, site: Site) -> None:
    """Signed in as A: B's meter page, invoice page, PDF and JSON all answer 404."""
    ctx = _context(browser, DESKTOP)
    page = ctx.new_page()
    _sign_in(page, site, site.a)
    for url in (f"/portal/meters/{site.meter_b}", f"/portal/invoices/{site.invoice_b}"):
        r = page.goto(site.base + url)
        assert r is not None
        assert r.status == 404, url
        assert "Bravo" not in page.content()
    for url in (
        f"/portal/invoices/{site.invoice_b}?format=pdf",
        f"/portal/consumption/meters/{site.meter_b}",
    ):
        assert ctx.request.get(site.base + url).status == 404, url
    own = ctx.request.get(f"{site.base}/portal/consumption/meters").json()
    assert [m["series_id"] for m in own["meters"]] == [site.meter_a]
    ctx.close()


def test_keyboard_and_sign_out(browser: Any, site: Site) -> None:
    """The keyboard reaches the content through the skip link and signs out (a form with the
    CSRF token), which ends the session: the dashboard then shows the sign-in."""
    ctx = _context(browser, DESKTOP)
    page = ctx.new_page()
    _sign_in(page, site, site.a)
    page.keyboard.press("Tab")  # keyboard first: the skip link, then into the content
    assert page.evaluate("() => document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.base}/portal/login")
    r = page.goto(site.base + "/portal/")
    assert r is not None
    assert r.status == 401
    ctx.close()


@pytest.mark.parametrize(("viewport", "tag"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_forecast_and_alert_settings(
    browser: Any, site: Site, viewport: dict[str, int], tag: str
) -> None:
    """The dashboard's forecast shows the expected bill between its low and high (as the JSON
    says); the customer sets an alert with the form, sees it, and removes it again."""
    ctx = _context(browser, viewport)
    page = ctx.new_page()
    _sign_in(page, site, site.a)
    fc = ctx.request.get(f"{site.base}/portal/consumption/current").json()["forecast"]
    assert fc is not None
    panel = page.locator("#forecast")
    for key in ("expected", "low", "high"):
        shown = panel.locator(f'[data-forecast="{key}"]').inner_text()
        assert re.sub(r"[^0-9.]", "", shown) == fc[key], key
    assert page.locator("#alerts a[href='/portal/alerts']").count() == 1

    page.locator("#alerts a[href='/portal/alerts']").click()
    page.wait_for_url(f"{site.base}/portal/alerts")
    _check(page, f"portal-alerts-{tag}")
    page.get_by_label("Alert on").select_option("quantity")
    page.get_by_label("Unit (for usage)").select_option("kWh")
    page.get_by_label("Limit", exact=True).fill("250")
    page.get_by_label("Name (optional)").fill("April cap")
    page.get_by_role("button", name="Add alert").click()
    page.wait_for_url(f"{site.base}/portal/alerts")
    rules = page.locator("ul.rules li")
    assert rules.count() == 1
    assert "April cap" in rules.first.inner_text()
    _check(page, f"portal-alerts-set-{tag}")
    page.goto(site.base + "/portal/")
    assert "April cap" in page.locator("#alerts").inner_text()
    page.goto(site.base + "/portal/alerts")
    page.get_by_role("button", name=re.compile("^Remove")).click()
    page.wait_for_url(f"{site.base}/portal/alerts")
    assert page.locator("ul.rules li").count() == 0
    ctx.close()
