"""Portal: the dashboard's bill forecast with its range, and the customer's alert settings
(own rules only, CSRF-protected forms, recent alerts)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from collector.alerts.rules import AlertRule
from collector.billing import accounts
from collector.storage import alert_store
from tests.collector.billing.conftest import plan_doc, put_usage, utc
from tests.collector.portal.conftest import Account, make_account, make_meter, make_plan

HTML = {"Accept": "text/html"}


def _customer_with_usage(
    conn: psycopg.Connection[Any], name: str, since: int, pv: int | None = None
) -> Account:
    """A customer on the basic plan whose meter used 0.5 kWh per 15 min from ``since`` March
    (or April when ``since`` is negative: ``-d`` is April ``d``) to the clock (10 April 12:00)."""
    pv = pv or make_plan(conn)
    acct = make_account(conn, name)
    sid = make_meter(conn, f"{name}-m")
    start = utc(2026, 3, since) if since > 0 else utc(2026, 4, -since)
    accounts.assign_meter(conn, acct.customer_id, sid, pv, utc(2026, 3, 1))
    put_usage(conn, sid, start, utc(2026, 4, 10, 12), 0.5)
    return acct


def _other_plan(conn: psycopg.Connection[Any]) -> int:
    _, version = accounts.create_plan(conn, "other", "Other", plan_doc(plan_id="other"))
    return version.plan_version_id


def _money(s: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.]", "", s))


def test_forecast_panel_shows_the_expected_bill_with_its_range(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Five weeks of steady usage: a patterned forecast, low ≤ expected ≤ high, above so far."""
    acct = _customer_with_usage(conn, "Fc BV", 5)
    body = client.get("/portal/consumption/current", headers=acct.auth).json()
    fc = body["forecast"]
    assert fc is not None
    assert fc["patterned"] is True
    assert fc["short_history"] is False
    low, exp, high, so_far = (Decimal(fc[k]) for k in ("low", "expected", "high", "so_far"))
    assert so_far < low <= exp <= high
    # 48 kWh a day over 30 days at 0.25 plus 10.00 standing, 21 % tax: about 447.70
    assert Decimal(400) < exp < Decimal(500)
    page = client.get("/portal/", headers=acct.auth).text
    panel = page[page.index('id="forecast"') :]
    panel = panel[: panel.index("</section>")]
    shown = {
        k: _money(re.search(rf'data-forecast="{k}">([^<]+)<', panel).group(1))  # type: ignore[union-attr]
        for k in ("expected", "low", "high")
    }
    assert shown == {"expected": exp, "low": low, "high": high}
    assert 'data-state="patterned"' in panel
    assert "€" in panel


def test_forecast_is_honest_about_short_history(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Usage only since 5 April: the panel says the forecast is a straight line."""
    acct = _customer_with_usage(conn, "Short BV", -5)
    fc = client.get("/portal/consumption/current", headers=acct.auth).json()["forecast"]
    assert fc["short_history"] is True
    assert fc["history_days"] == 5.5
    page = client.get("/portal/", headers=acct.auth).text
    assert 'data-state="short"' in page
    assert "Less than a week of readings" in page


def test_no_usage_means_no_forecast(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    """A meter without usage in the period, and a customer without meters: no figures at all."""
    pv = make_plan(conn)
    acct = make_account(conn, "Empty BV")
    accounts.assign_meter(conn, acct.customer_id, make_meter(conn, "empty-m"), pv, utc(2026, 3, 1))
    bare = make_account(conn, "Bare BV")
    for a in (acct, bare):
        assert client.get("/portal/consumption/current", headers=a.auth).json()["forecast"] is None
        page = client.get("/portal/", headers=a.auth).text
        panel = page[page.index('id="forecast"') :]
        assert 'data-state="no-data"' in panel[: panel.index("</section>")]
        assert "data-forecast" not in page


def test_forecast_speaks_the_customers_language(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """A Dutch customer reads the forecast in Dutch with Dutch amounts (€ 1.234,56)."""
    acct = _customer_with_usage(conn, "Nl BV", 5)
    conn.execute("UPDATE customers SET language = 'nl' WHERE customer_id = %s", (acct.customer_id,))
    page = client.get("/portal/", headers=acct.auth).text
    assert "Verwachte factuur" in page
    assert re.search(r'data-forecast="expected">€\s\d+,\d\d<', page)


def _sign_in(client: TestClient, acct: Account) -> str:
    """A browser session for ``acct``; returns the session's CSRF token."""
    client.post("/portal/login", data={"code": acct.token})
    page = client.get("/portal/alerts", headers=HTML).text
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m is not None
    return m.group(1)


def test_customer_sets_and_removes_an_alert_in_the_browser(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Forms with the session's CSRF token add and remove a rule; without it, 403."""
    acct = _customer_with_usage(conn, "Al BV", 5)
    csrf = _sign_in(client, acct)
    form = {"metric": "quantity", "unit": "kWh", "threshold": "500", "name": "Monthly cap"}
    assert client.post("/portal/alerts", data=form, follow_redirects=False).status_code == 403
    bad = client.post("/portal/alerts", data={**form, "csrf": "nope"}, follow_redirects=False)
    assert bad.status_code == 403
    r = client.post("/portal/alerts", data={**form, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    (rule,) = alert_store.list_rules(conn, customer_id=acct.customer_id)
    assert (rule.owner, rule.metric.value, rule.unit, rule.threshold) == (
        "customer",
        "quantity",
        "kWh",
        Decimal(500),
    )
    page = client.get("/portal/alerts", headers=HTML).text
    assert "Monthly cap" in page
    assert f'data-rule="{rule.rule_id}"' in page
    dash = client.get("/portal/", headers=HTML).text
    assert "Monthly cap" in dash[dash.index('id="alerts"') :]
    gone = client.post(
        f"/portal/alerts/{rule.rule_id}/remove", data={"csrf": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303
    assert alert_store.list_rules(conn, customer_id=acct.customer_id, active_only=True) == []
    alert_store.insert_alert(
        conn,
        rule.rule_id,
        acct.customer_id,
        "2026-04",
        value=Decimal("512.5"),
        limit_value=Decimal(500),
        at=utc(2026, 4, 9, 8),
    )
    page = client.get("/portal/alerts", headers=HTML).text
    assert 'data-state="no-rules"' in page
    assert "512.5 kWh" in page  # a stopped rule's alert keeps its unit


def test_bad_alert_forms_are_refused_with_a_reason(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Not a number, zero, a unit none of the customer's meters has: 422 with the reason."""
    acct = _customer_with_usage(conn, "Bad BV", 5)
    csrf = _sign_in(client, acct)
    for form, why in (
        ({"metric": "amount", "threshold": "lots"}, "must be a number"),
        ({"metric": "amount", "threshold": "0"}, "threshold must be &gt; 0"),
        ({"metric": "quantity", "unit": "m3", "threshold": "5"}, "unit of one of your meters"),
        ({"metric": "power", "threshold": "5"}, "quantity or amount"),
        ({}, "quantity or amount"),
    ):
        r = client.post("/portal/alerts", data={**form, "csrf": csrf})
        assert r.status_code == 422, form
        assert why in r.text
    assert alert_store.list_rules(conn, customer_id=acct.customer_id) == []


def test_customer_a_never_sees_or_changes_bs_rules(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """B's rules, B's alerts and staff rules stay invisible to A; A cannot remove them."""
    a = _customer_with_usage(conn, "A BV", 5)
    b = _customer_with_usage(conn, "B BV", 5, pv=_other_plan(conn))
    r = client.post(
        "/portal/alerts", data={"metric": "amount", "threshold": "99.50"}, headers=b.auth
    )
    assert r.status_code == 201
    (b_rule,) = alert_store.list_rules(conn, customer_id=b.customer_id)
    staff = alert_store.create_rule(
        conn,
        AlertRule(0, "staff", a.customer_id, b_rule.metric, None, Decimal(1), False, "internal"),
    )
    alert_store.insert_alert(
        conn,
        b_rule.rule_id,
        b.customer_id,
        "2026-04",
        value=Decimal(120),
        limit_value=Decimal("99.50"),
        at=utc(2026, 4, 9),
    )
    alert_store.insert_alert(
        conn,
        staff.rule_id,
        a.customer_id,
        "2026-04",
        value=Decimal(5),
        limit_value=Decimal(1),
        at=utc(2026, 4, 9),
    )
    mine = client.get("/portal/alerts", headers=a.auth).json()
    assert mine["rules"] == []
    assert mine["recent_alerts"] == []
    theirs = client.get("/portal/alerts", headers=b.auth).json()
    assert [x["rule_id"] for x in theirs["rules"]] == [b_rule.rule_id]
    assert [x["value"] for x in theirs["recent_alerts"]] == ["120"]
    for rule_id in (b_rule.rule_id, staff.rule_id, 999_999):
        r = client.post(f"/portal/alerts/{rule_id}/remove", headers=a.auth)
        assert r.status_code == 404
    assert all(r.active for r in alert_store.list_rules(conn))
    assert client.get("/portal/alerts").status_code == 401
