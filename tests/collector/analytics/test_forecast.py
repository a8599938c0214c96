"""Bill forecast: the pattern forecast core, pricing through the billing core, and the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from collector.analytics.bill_forecast import price_scenarios, price_usage
from collector.analytics.forecast import ForecastConfig, forecast_usage, linear_projection
from collector.api.app import create_app
from collector.billing import accounts
from collector.billing.model import Address, Customer, CustomerSpec
from collector.billing.periods import PeriodKey, period_for
from collector.billing.segments import Segment
from collector.errors import AnalyticsError
from collector.rating import load_plan
from collector.storage.billing_usage_store import UsageRows
from tests.collector.billing.conftest import make_series, plan_doc, put_usage, spec, utc

Conn = psycopg.Connection[Any]


def ts(*a: int) -> int:
    return int(datetime(*a, tzinfo=UTC).timestamp())  # type: ignore[misc]


def office(starts: np.ndarray, holidays: tuple[date, ...] = ()) -> np.ndarray:
    """2 per quarter hour on weekdays 08–18 UTC, 0.2 otherwise and on holidays."""
    h = (starts % 86_400) // 3600
    wd = ((starts // 86_400) + 3) % 7
    day = starts // 86_400
    hol = np.isin(day, [(d - date(1970, 1, 1)).days for d in holidays])
    out: np.ndarray = np.where((h >= 8) & (h < 18) & (wd < 5) & ~hol, 2.0, 0.2)
    return out


class TestForecastCore:
    def test_a_weekly_pattern_is_forecast_exactly_where_a_straight_line_is_not(self) -> None:
        """An office meter: the pattern forecast of May's rest is exact; Lago's line is not."""
        hol = (date(2026, 5, 14), date(2026, 5, 25))  # Ascension, Whit Monday
        h0, p0, now, p1 = ts(2026, 3, 1), ts(2026, 5, 1), ts(2026, 5, 10), ts(2026, 6, 1)
        grid = np.arange(h0, p1, 900, dtype=np.int64)
        truth = office(grid, hol)[None, :]
        f = forecast_usage(
            truth[:, : (now - h0) // 900], h0, period_start=p0, now=now, period_end=p1,
            tz="UTC", holidays=hol,
        )
        final = truth[0, (p0 - h0) // 900 :].sum()
        assert f.total[0] == pytest.approx(final, rel=1e-9)
        assert f.remaining_low[0] <= f.remaining[0] <= f.remaining_high[0]
        line = linear_projection(f.observed, p0, now, p1)
        assert abs(line[0] - final) / final > 0.03

    def test_a_meter_started_mid_period_forecasts_from_its_real_days_only(self) -> None:
        """Zero-filled buckets before a meter's first usage are no history: an office meter
        installed two weeks ago is forecast exactly from those two weeks (beside one with the
        whole history), and one installed three days ago continues its own rate."""
        h0, p0, now, p1 = ts(2026, 3, 15), ts(2026, 5, 1), ts(2026, 5, 20), ts(2026, 6, 1)
        grid = np.arange(h0, p1, 900, dtype=np.int64)
        truth = office(grid)
        late = np.where(grid >= ts(2026, 5, 6), truth, 0.0)
        fresh = np.where(grid >= ts(2026, 5, 17), 0.5, 0.0)
        hist = np.vstack([truth, late, fresh])[:, : (now - h0) // 900]
        f = forecast_usage(hist, h0, period_start=p0, now=now, period_end=p1, tz="UTC")
        assert f.patterned.tolist() == [True, True, False]
        assert f.history_days.tolist() == pytest.approx([66.0, 14.0, 3.0])
        j0 = (p0 - h0) // 900
        assert f.total[0] == pytest.approx(truth[j0:].sum(), rel=1e-9)
        assert f.total[1] == pytest.approx(late[j0:].sum(), rel=1e-9)
        assert f.remaining_low[1] <= f.remaining[1] <= f.remaining_high[1]
        assert f.total[2] == pytest.approx(0.5 * (p1 - ts(2026, 5, 17)) / 900)

    def test_short_history_falls_back_to_a_straight_line(self) -> None:
        """Three days of history: the rest of the period continues the average rate."""
        p0, now, p1 = ts(2026, 5, 1), ts(2026, 5, 4), ts(2026, 6, 1)
        hist = np.full((1, (now - p0) // 900), 0.5)
        f = forecast_usage(hist, p0, period_start=p0, now=now, period_end=p1, tz="UTC")
        assert not f.patterned[0]
        assert f.total[0] == pytest.approx(0.5 * (p1 - p0) / 900)

    def test_misaligned_or_misordered_times_are_refused(self) -> None:
        """Instants off the 15-minute grid or out of order are an AnalyticsError."""
        hist = np.zeros((1, 100))
        with pytest.raises(AnalyticsError):
            forecast_usage(hist, 0, period_start=0, now=901, period_end=9000, tz="UTC")
        with pytest.raises(AnalyticsError):
            forecast_usage(hist, 0, period_start=900, now=0, period_end=9000, tz="UTC")
        with pytest.raises(AnalyticsError):
            ForecastConfig(half_life_days=0)


@pytest.fixture
def client(pool: psycopg_pool.ConnectionPool[Any]) -> Iterator[TestClient]:
    with TestClient(create_app(pool)) as c:
        yield c


def test_forecast_prices_usage_like_the_invoice(client: TestClient, conn: Conn) -> None:
    """Flat 1 kWh per quarter hour in Amsterdam, asked on 10 March: March has 743 hours, so
    2972 kWh x 0.25 + 10.00 = 753.00, VAT 158.13, total 911.13; so far 864 kWh → 273.46."""
    c = accounts.create_customer(conn, spec(tz="Europe/Amsterdam"))
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    sid = make_series(conn, "dev-f")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 1, 1), utc(2026, 3, 9, 23), 1.0)
    r = client.get(
        "/analytics/forecast",
        params={"customer_id": c.customer_id, "at": "2026-03-10T00:00+01:00"},
    )
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["period"] == "2026-03"
    assert f["to_date"]["total"] == "273.46"
    assert Decimal(f["to_date"]["charges"]["energy"]) == Decimal("216")
    assert f["expected"]["total"] == "911.13"
    assert Decimal(f["expected"]["charges"]["energy"]) == Decimal("743")
    assert f["linear"]["total"] == "911.13"
    assert Decimal(f["low"]["total"]) <= Decimal("911.13") <= Decimal(f["high"]["total"])
    assert f["patterned"] is True


def test_forecast_errors_are_4xx(client: TestClient, conn: Conn) -> None:
    """Unknown customer 404; a customer without meters 422."""
    assert client.get("/analytics/forecast", params={"customer_id": 999}).status_code == 404
    c = accounts.create_customer(conn, spec())
    r = client.get(
        "/analytics/forecast", params={"customer_id": c.customer_id, "at": "2026-03-10T00:00Z"}
    )
    assert r.status_code == 422
    assert "no meters" in r.json()["detail"]


def test_dashboard_days_comparison_and_forecast(client: TestClient, conn: Conn) -> None:
    """On 10 March in Amsterdam: nine local days of 96 kWh, the same nine days of February
    at 0.5 per quarter hour (432 kWh), and the forecast of the flat month (911.13)."""
    c = accounts.create_customer(conn, spec(tz="Europe/Amsterdam"))
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    sid = make_series(conn, "dev-d")
    accounts.assign_meter(conn, c.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    put_usage(conn, sid, utc(2026, 1, 31, 23), utc(2026, 2, 28, 23), 0.5)
    put_usage(conn, sid, utc(2026, 2, 28, 23), utc(2026, 3, 9, 23), 1.0, estimated=0.25)
    r = client.get(
        "/analytics/dashboard",
        params={"customer_id": c.customer_id, "at": "2026-03-10T00:00+01:00"},
    )
    assert r.status_code == 200, r.text
    d = r.json()
    assert [day["quantity"] for day in d["days"]] == [96.0] * 9
    assert d["days"][0]["estimated"] == 24.0
    assert d["so_far"] == 864.0
    assert d["same_days_last_period"] == 432.0
    assert d["forecast"]["to_date"]["total"] == "273.46"


def test_scenarios_priced_in_one_pass_equal_pricing_each_alone() -> None:
    """Five usage scenarios on a TOU + demand + tiers plan: one rating pass gives exactly the
    amounts (total, tax, every charge) of five separate pricings."""
    root = Path(__file__).resolve().parents[3]
    plan = load_plan(root / "collector" / "rating" / "examples" / "business_tou_demand.yaml")
    cust = Customer(
        7,
        CustomerSpec("C", Address("S 1", "Town", "NL"), "EUR", "Europe/Berlin", Decimal("0.19")),
        utc(2026, 1, 1),
    )
    period = period_for(PeriodKey(2026, 6), "Europe/Berlin")
    segs = [Segment(0, 7, 70, 3, 1, period.start, period.end, Fraction(1)),
            Segment(1, 7, 71, 4, 1, period.start, period.end, Fraction(1))]
    rng = np.random.default_rng(5)
    starts = np.arange(int(period.start.timestamp()), int(period.end.timestamp()), 900)
    scenarios = []
    for k in range(5):
        q = rng.gamma(2.0, 0.2 * (k + 1), size=2 * starts.shape[0])
        scenarios.append(
            UsageRows(np.repeat(np.asarray([3, 4]), starts.shape[0]), np.tile(starts, 2), q,
                      q * 0.1, np.ones(q.shape[0], dtype=np.int64))
        )
    together = price_scenarios(cust, period, segs, {1: plan}, {3: "kWh", 4: "kWh"},
                               scenarios=scenarios)
    alone = [price_usage(cust, period, segs, {1: plan}, {3: "kWh", 4: "kWh"}, rows=r)
             for r in scenarios]
    assert together == alone
    assert len({p.total for p in together}) == 5
