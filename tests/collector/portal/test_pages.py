"""Portal pages: figures, navigation, invoices, the running charge and escaping."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
from fastapi.testclient import TestClient

from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.periods import PeriodKey
from tests.collector.billing.conftest import put_usage, utc
from tests.collector.portal.conftest import Clock, make_account, make_meter, make_plan

HTML = {"Accept": "text/html"}


def test_dashboard_shows_this_and_previous_period(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """10 April: 456.00 kWh so far, 744.00 kWh in March, meter linked, chart drawn."""
    pv = make_plan(conn)
    acct = make_account(conn, "Dash BV")
    sid = make_meter(conn, "dash-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 4, 1), 0.25)
    put_usage(conn, sid, utc(2026, 4, 1), utc(2026, 4, 10, 12), 0.5)
    r = client.get("/portal/", headers=acct.auth)
    assert r.status_code == 200
    assert "456.00 kWh" in r.text
    assert "744.00 kWh" in r.text
    assert f'href="/portal/meters/{sid}"' in r.text
    assert "<svg" in r.text
    assert r.text.count('class="act"') == 10  # 1..10 April have usage, nothing estimated
    assert 'class="est"' not in r.text
    assert r.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in r.headers["content-security-policy"]


def test_dashboard_shades_estimated_usage(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A day with estimated usage is drawn with a hatched part and its share is listed."""
    pv = make_plan(conn)
    acct = make_account(conn, "Est BV")
    sid = make_meter(conn, "est-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, utc(2026, 4, 2), utc(2026, 4, 3), 1.0, estimated=0.5)
    r = client.get("/portal/", headers=acct.auth)
    assert r.text.count('class="est"') == 1
    assert "50% estimated" in r.text


def test_meter_page_month_and_day_navigation(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """March in Europe/Amsterdam: 31 daily bars, links to days; 29 March has 23 hourly bars."""
    pv = make_plan(conn)
    acct = make_account(conn, "Nav BV", tz="Europe/Amsterdam")
    sid = make_meter(conn, "nav-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 2, 1))
    put_usage(conn, sid, utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 1.0)  # local 29 March
    month = client.get(f"/portal/meters/{sid}", params={"month": "2026-03"}, headers=acct.auth)
    assert month.status_code == 200
    assert month.text.count('<g class="bar') == 31
    assert 'href="?month=2026-02"' in month.text
    assert 'href="?month=2026-04"' in month.text
    assert 'href="?day=2026-03-29"' in month.text
    assert "92.00 kWh" in month.text  # 23 hours × 4 kWh
    day = client.get(f"/portal/meters/{sid}", params={"day": "2026-03-29"}, headers=acct.auth)
    assert day.text.count('<g class="bar') == 23
    assert 'href="?day=2026-03-28"' in day.text
    assert 'href="?day=2026-03-30"' in day.text
    assert 'href="?month=2026-03"' in day.text
    assert "4.00 kWh" in day.text


def test_meter_page_defaults_to_this_month(
    client: TestClient, conn: psycopg.Connection[Any], clock: Clock
) -> None:
    """Without a query the meter page shows the current local month (April on 10 April)."""
    pv = make_plan(conn)
    acct = make_account(conn, "Now BV")
    sid = make_meter(conn, "now-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    r = client.get(f"/portal/meters/{sid}", headers=acct.auth)
    assert "April 2026" in r.text
    assert r.text.count('<g class="bar') == 30
    assert (
        client.get(
            f"/portal/meters/{sid}", params={"month": "2026-13"}, headers=acct.auth
        ).status_code
        == 422
    )


def test_customer_name_and_device_are_escaped(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A customer called <script> and a device called <img onerror> appear only escaped."""
    pv = make_plan(conn)
    acct = make_account(conn, "<script>alert('x')</script>")
    sid = make_meter(conn, '<img src=x onerror="alert(1)">')
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    for url in ("/portal/", f"/portal/meters/{sid}"):
        r = client.get(url, headers=acct.auth)
        assert r.status_code == 200
        assert "<script" not in r.text
        assert "<img" not in r.text
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in r.text
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in r.text


def _closed_march(
    conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> tuple[int, int, int]:
    """A and B with 100 kWh each in March, finalized; returns (a, b, meter of A)."""
    pv = make_plan(conn)
    a = make_account(conn, "A", token="tok-a")
    b = make_account(conn, "B", token="tok-b")
    sa, sb = make_meter(conn, "a-1"), make_meter(conn, "b-1")
    accounts.assign_meter(conn, a.customer_id, sa, pv, utc(2026, 3, 1))
    accounts.assign_meter(conn, b.customer_id, sb, pv, utc(2026, 3, 1))
    for sid in (sa, sb):
        put_usage(conn, sid, utc(2026, 3, 10), utc(2026, 3, 11, 1), 1.0)  # 100 q-h = 100 kWh
    close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    finalize_period(pool, PeriodKey(2026, 3), utc(2026, 4, 10))
    return a.customer_id, b.customer_id, sa


def _invoice(conn: psycopg.Connection[Any], customer_id: int) -> tuple[int, str, Decimal]:
    row = conn.execute(
        "SELECT invoice_id, number, total FROM invoices WHERE customer_id = %s", (customer_id,)
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), Decimal(row[2])


def test_invoice_page_links_the_pdf(
    client: TestClient, conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """The browser page of a final invoice shows its number and total and links its PDF."""
    a, _, _ = _closed_march(conn, pool)
    inv_id, number, total = _invoice(conn, a)
    assert total == Decimal("42.35")  # (100 kWh × 0.25 + 10.00) × 1.21
    auth = {"Authorization": "Bearer tok-a", **HTML}
    r = client.get(f"/portal/invoices/{inv_id}", headers=auth)
    assert r.status_code == 200
    assert number in r.text
    assert "€42.35" in r.text
    assert f'href="/portal/invoices/{inv_id}?format=pdf"' in r.text
    pdf = client.get(f"/portal/invoices/{inv_id}", params={"format": "pdf"}, headers=auth)
    assert pdf.content.startswith(b"%PDF")


def test_dashboard_lists_invoices_and_hides_others(
    client: TestClient, conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """A's dashboard lists A's invoice only; B's invoice page is 404 for A."""
    a, b, _ = _closed_march(conn, pool)
    mine, my_number, _ = _invoice(conn, a)
    theirs, their_number, _ = _invoice(conn, b)
    auth = {"Authorization": "Bearer tok-a", **HTML}
    r = client.get("/portal/", headers=auth)
    assert my_number in r.text
    assert their_number not in r.text
    assert client.get(f"/portal/invoices/{theirs}", headers=auth).status_code == 404
    assert client.get(f"/portal/invoices/{mine}", headers=auth).status_code == 200


def test_running_charge_comes_from_the_draft(
    client: TestClient,
    conn: psycopg.Connection[Any],
    pool: psycopg_pool.ConnectionPool[Any],
    clock: Clock,
) -> None:
    """With April drafted, the dashboard shows the draft's total as the running charge."""
    pv = make_plan(conn)
    acct = make_account(conn, "Draft BV")
    sid = make_meter(conn, "d-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, utc(2026, 4, 1), utc(2026, 4, 2), 0.5)  # 48 kWh
    close_period(pool, PeriodKey(2026, 4), clock.now)
    row = conn.execute("SELECT total FROM invoices WHERE status = 'draft'").fetchone()
    assert row is not None
    assert Decimal(row[0]) == Decimal("26.62")  # (48 × 0.25 + 10.00) × 1.21
    body = client.get("/portal/consumption/current", headers=acct.auth).json()
    assert body["running_charge"]["total"] == "26.62"
    page = client.get("/portal/", headers=acct.auth).text
    assert "€26.62" in page


def test_dashboard_without_meters_or_invoices(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A new customer sees its name, no meters, no invoices and no running charge yet."""
    acct = make_account(conn, "Fresh Start BV")
    r = client.get("/portal/", headers=acct.auth)
    assert r.status_code == 200
    assert "Fresh Start BV" in r.text
    assert "No meters are linked to your account yet." in r.text
    assert "No invoices yet." in r.text
    assert "not available yet" in r.text


def test_pages_speak_the_customers_language(
    client: TestClient, conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """A Dutch customer's invoice page and dashboard are in Dutch with Dutch amounts."""
    a, _, meter = _closed_march(conn, pool)
    conn.execute("UPDATE customers SET language = 'nl' WHERE customer_id = %s", (a,))
    inv_id, number, _ = _invoice(conn, a)
    auth = {"Authorization": "Bearer tok-a", **HTML}
    page = client.get(f"/portal/invoices/{inv_id}", headers=auth).text
    assert '<html lang="nl">' in page
    assert f"Factuur {number}" in page
    assert "€\xa042,35" in page
    assert "Totaal" in page
    listing = client.get("/portal/invoices", headers=auth).text
    assert "Facturen" in listing
    assert "€\xa042,35" in listing
    dash = client.get("/portal/", headers=auth).text
    assert "Uw verbruik" in dash
    assert "Deze periode tot nu" in dash
    month = client.get(f"/portal/meters/{meter}", params={"month": "2026-03"}, headers=auth).text
    assert "maart 2026" in month
    assert "Vergeleken met februari 2026" in month
    assert "Per uur" in month


def test_meter_chart_compares_with_the_month_before(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """April's daily bars carry March's day n as a marker (30 of March's 31 days align), and
    the comparison card holds March's whole total."""
    pv = make_plan(conn)
    acct = make_account(conn, "Compare BV")
    sid = make_meter(conn, "cmp-1")
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, utc(2026, 3, 1), utc(2026, 4, 1), 0.25)  # 24 kWh a day in March
    page = client.get(f"/portal/meters/{sid}", params={"month": "2026-04"}, headers=acct.auth)
    marks = [float(x) for x in re.findall(r'data-compare="([^"]+)"', page.text)]
    assert marks == [24.0] * 30
    assert "Compared with March 2026" in page.text
    assert "744.00 kWh" in page.text
