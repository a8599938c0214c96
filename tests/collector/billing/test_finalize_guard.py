"""The finalize guard: nothing becomes final before its period end + grace window, unless
forced with a reason that is recorded on the invoice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.api import billing_routes
from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.finalize_guard import ForceReason, check_ready, force_reason
from collector.billing.periods import PeriodKey, zone
from collector.cli import main
from collector.errors import NotReady, ValidationFailed
from collector.storage import billing_invoice_store as invoices
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc

Pool = psycopg_pool.ConnectionPool[Any]
Conn = psycopg.Connection[Any]
GRACE = timedelta(hours=72)
END = utc(2026, 3, 31, 22)  # Amsterdam's March 2026 ends here


class TestGuardCore:
    """The pure rule."""

    def test_refused_inside_the_grace_window(self) -> None:
        """One second before period end + grace is refused, naming the instant it opens."""
        with pytest.raises(NotReady, match="2026-04-03T22:00:00") as err:
            check_ready("invoice 1", END, END + GRACE - timedelta(seconds=1), GRACE, None)
        assert err.value.ready_at == END + GRACE

    def test_allowed_once_the_window_has_passed(self) -> None:
        """At period end + grace it may be finalized."""
        check_ready("invoice 1", END, END + GRACE, GRACE, None)

    def test_forced_with_a_reason_is_allowed_early(self) -> None:
        """A reason lets staff finalize inside the window."""
        check_ready("invoice 1", END, END, GRACE, ForceReason("customer leaves today"))

    @pytest.mark.parametrize(
        ("force", "reason"), [(True, None), (True, "  "), (False, "why"), (True, "x" * 501)]
    )
    def test_force_needs_exactly_a_usable_reason(self, force: bool, reason: str | None) -> None:
        """force without a reason, a blank or too long one, or a reason without force: refused."""
        with pytest.raises(ValidationFailed):
            force_reason(force, reason)


def _current_month_draft(conn: Conn, pool: Pool) -> tuple[int, PeriodKey]:
    """A draft of the customer's month that is running right now (server clock)."""
    now = datetime.now(UTC)
    local = now.astimezone(zone("Europe/Amsterdam"))
    key = PeriodKey(local.year, local.month)
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    c = accounts.create_customer(conn, spec("Open BV"))
    sid = make_series(conn, "open-1")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2020, 1, 1))
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    put_usage(conn, sid, start, start + timedelta(hours=1), 1.0)
    close_period(pool, key, now)
    inv = invoices.list_invoices(conn, period=str(key)).items[0]
    return inv.invoice_id, key


@pytest.fixture
def client(pool: Pool) -> Iterator[TestClient]:
    """A test client of the collector app with the billing router."""
    app = create_app(pool)
    app.include_router(billing_routes.router)
    with TestClient(app) as c:
        yield c


def test_bodyless_finalize_of_the_open_month_is_refused(
    client: TestClient, conn: Conn, pool: Pool
) -> None:
    """The reported bug: a body-less POST finalized the current month; now it is a 409."""
    inv_id, _ = _current_month_draft(conn, pool)
    r = client.post(f"/invoices/{inv_id}/finalize")
    assert r.status_code == 409
    assert "cannot be finalized before" in r.json()["detail"]
    assert invoices.get_invoice(conn, inv_id).number is None


def test_forced_finalize_needs_a_reason_and_records_it(
    client: TestClient, conn: Conn, pool: Pool
) -> None:
    """force without reason is 422; with a reason the invoice is final and keeps the reason."""
    inv_id, _ = _current_month_draft(conn, pool)
    assert client.post(f"/invoices/{inv_id}/finalize", json={"force": True}).status_code == 422
    r = client.post(
        f"/invoices/{inv_id}/finalize", json={"force": True, "reason": "contract ends today"}
    )
    assert r.status_code == 200
    assert r.json()["forced_reason"] == "contract ends today"
    assert r.json()["number"] is not None
    doc = client.get(f"/invoices/{inv_id}").json()
    assert doc["forced_reason"] == "contract ends today"


def test_finalize_after_the_window_records_no_reason(
    client: TestClient, conn: Conn, pool: Pool
) -> None:
    """A March draft finalized in December is a normal finalization."""
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    c = accounts.create_customer(conn, spec())
    accounts.assign_meter(
        conn, c.customer_id, make_series(conn, "d1"), v.plan_version_id, utc(2026, 1, 1)
    )
    close_period(pool, PeriodKey(2026, 3), utc(2026, 4, 1))
    inv_id = invoices.list_invoices(conn, period="2026-03").items[0].invoice_id
    early = client.post(f"/invoices/{inv_id}/finalize", json={"now": "2026-04-03T21:59:59+00:00"})
    assert early.status_code == 409
    r = client.post(f"/invoices/{inv_id}/finalize", json={"now": "2026-04-03T22:00:00+00:00"})
    assert r.status_code == 200
    assert r.json()["forced_reason"] is None


def test_period_finalize_inside_the_window_is_refused(
    client: TestClient, conn: Conn, pool: Pool
) -> None:
    """API 409, library NotReady, CLI exit 2: no invoice of the period becomes final."""
    inv_id, key = _current_month_draft(conn, pool)
    r = client.post(f"/billing/periods/{key}/finalize", json={})
    assert r.status_code == 409
    with pytest.raises(NotReady):
        finalize_period(pool, key, datetime.now(UTC))
    assert invoices.get_invoice(conn, inv_id).number is None


def test_period_finalize_cli_refuses_and_forces(
    db: str,
    conn: Conn,
    pool: Pool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI exits 2 with the reason; --force without --reason too; with one it finalizes."""
    inv_id, key = _current_month_draft(conn, pool)
    monkeypatch.setenv("TALLY_DATABASE_URL", db)
    assert main(["billing", "finalize", str(key), "--plain"]) == 2
    assert "cannot be finalized before" in capsys.readouterr().err
    assert main(["billing", "finalize", str(key), "--plain", "--force"]) == 2
    assert invoices.get_invoice(conn, inv_id).number is None
    assert main(["billing", "finalize", str(key), "--plain", "--force", "--reason", "audit"]) == 0
    inv = invoices.get_invoice(conn, inv_id)
    assert inv.number is not None
    assert inv.forced_reason == "audit"


def test_period_not_yet_closed_is_refused_before_it_ends(conn: Conn, pool: Pool) -> None:
    """Even with no drafts, a period that has not ended anywhere cannot be finalized."""
    with pytest.raises(NotReady):
        finalize_period(pool, PeriodKey(2026, 3), utc(2026, 3, 20))


def test_forced_reason_is_immutable(conn: Conn, pool: Pool) -> None:
    """The reason is part of the final invoice: the database rejects changing it."""
    inv_id, key = _current_month_draft(conn, pool)
    finalize_period(pool, key, datetime.now(UTC), forced=ForceReason("audit"))
    with pytest.raises(psycopg.Error):
        conn.execute("UPDATE invoices SET forced_reason = 'other' WHERE invoice_id = %s", (inv_id,))
