"""Demand ratchets at close: final invoices' peaks are stored and floor later months' demand."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import psycopg_pool
import pytest

from collector.billing import accounts
from collector.billing.close import close_period, finalize_period
from collector.billing.model import LineKind
from collector.billing.periods import PeriodKey
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_peak_store as peaks
from tests.collector.billing.conftest import make_series, put_usage, spec, utc

D = Decimal
JAN, FEB = PeriodKey(2026, 1), PeriodKey(2026, 2)
Pool = psycopg_pool.ConnectionPool[Any]
Conn = psycopg.Connection[Any]

RATCHET_PLAN: dict[str, Any] = {
    "format": "tally.plan/v1",
    "id": "demand-ratchet",
    "version": 1,
    "currency": "EUR",
    "charges": [
        {
            "type": "demand",
            "id": "demand",
            "unit": "kW",
            "price": "10.00",
            "ratchet": {"percent": 80, "months": 11},
        }
    ],
}


def _month(conn: Conn, sid: int, start: datetime, end: datetime, peak_kwh: float) -> None:
    """1 kWh per 15 minutes (4 kW) all month and one quarter hour of ``peak_kwh`` on the 10th."""
    put_usage(conn, sid, start, end, 1.0)
    put_usage(conn, sid, start + timedelta(days=9), start + timedelta(days=9, minutes=15), peak_kwh)


def _setup(conn: Conn) -> tuple[int, int]:
    c = accounts.create_customer(conn, spec(tz="UTC"))
    _, v = accounts.create_plan(conn, "ratchet", "Demand with ratchet", RATCHET_PLAN)
    sid = make_series(conn, "dev-ratchet")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2025, 12, 1))
    _month(conn, sid, utc(2026, 1, 1), utc(2026, 2, 1), 30.0)  # 30 kWh in 15 min = 120 kW
    _month(conn, sid, utc(2026, 2, 1), utc(2026, 3, 1), 15.0)  # 15 kWh in 15 min = 60 kW
    return c.customer_id, sid


def _demand_line(conn: Conn, customer_id: int, period: str) -> Any:
    page = invoices.list_invoices(conn, customer_id=customer_id, period=period)
    inv = invoices.get_invoice(conn, page.items[0].invoice_id)
    return next(ln for ln in inv.lines if ln.kind is LineKind.DEMAND)


def test_previous_final_peak_floors_demand_at_80_percent(conn: Conn, pool: Pool) -> None:
    """120 kW in January, 60 kW in February, 80 % ratchet -> February bills 96 kW = 960.00."""
    cid, _ = _setup(conn)
    close_period(pool, JAN, utc(2026, 2, 10))
    finalize_period(pool, JAN, utc(2026, 2, 10))
    assert _demand_line(conn, cid, "2026-01").quantity == D("120")
    close_period(pool, FEB, utc(2026, 3, 10))
    line = _demand_line(conn, cid, "2026-02")
    assert (line.quantity, line.amount) == (D("96"), D("960.00"))


def test_actual_peak_is_stored_not_the_ratcheted_one(conn: Conn, pool: Pool) -> None:
    """February's stored peak is its actual 60 kW, not the 96 kW it was billed at."""
    cid, sid = _setup(conn)
    for key, now in ((JAN, utc(2026, 2, 10)), (FEB, utc(2026, 3, 10))):
        close_period(pool, key, now)
        finalize_period(pool, key, now)
    history = peaks.peak_history(conn, [cid], ["2026-01", "2026-02"])
    assert history[(cid, sid, "demand")] == {"2026-01": D("120"), "2026-02": D("60")}


def test_draft_peaks_do_not_ratchet(conn: Conn, pool: Pool) -> None:
    """A January still in draft sets no floor: February bills its own 60 kW = 600.00."""
    cid, _ = _setup(conn)
    close_period(pool, JAN, utc(2026, 2, 10))
    close_period(pool, FEB, utc(2026, 3, 10))
    line = _demand_line(conn, cid, "2026-02")
    assert (line.quantity, line.amount) == (D("60"), D("600.00"))


def test_peaks_older_than_the_ratchet_months_are_ignored(conn: Conn, pool: Pool) -> None:
    """A 2-month ratchet in April does not see January's 120 kW: April bills its own 60 kW."""
    c = accounts.create_customer(conn, spec(tz="UTC"))
    doc = {
        **RATCHET_PLAN,
        "charges": [{**RATCHET_PLAN["charges"][0], "ratchet": {"percent": 80, "months": 2}}],
    }
    _, v = accounts.create_plan(conn, "ratchet2", "Short ratchet", doc)
    sid = make_series(conn, "dev-short")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2025, 12, 1))
    _month(conn, sid, utc(2026, 1, 1), utc(2026, 2, 1), 30.0)
    _month(conn, sid, utc(2026, 4, 1), utc(2026, 5, 1), 15.0)
    close_period(pool, JAN, utc(2026, 2, 10))
    finalize_period(pool, JAN, utc(2026, 2, 10))
    close_period(pool, PeriodKey(2026, 4), utc(2026, 5, 10))
    assert _demand_line(conn, c.customer_id, "2026-04").quantity == D("60")


def test_peaks_of_a_final_invoice_cannot_be_deleted(conn: Conn, pool: Pool) -> None:
    """The database rejects deleting a final invoice's peaks (SQLSTATE TL001)."""
    _setup(conn)
    close_period(pool, JAN, utc(2026, 2, 10))
    finalize_period(pool, JAN, utc(2026, 2, 10))
    with pytest.raises(psycopg.Error) as err:
        conn.execute("DELETE FROM invoice_demand_peaks")
    assert err.value.sqlstate == "TL001"
