"""The dashboard: this billing period so far against the previous one, per meter and per unit,
the running charge from the period's draft invoice (if a close run made one), latest invoices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from collector.billing.periods import BillingPeriod
from collector.portal import figures as fig
from collector.portal.charts import Bar, bar_chart
from collector.portal.consumption import MeterUsage, share
from collector.portal.layout import ESTIMATE_NOTE, fill, text
from collector.portal.model import InvoiceSummary, PortalMeter

__all__ = ["Dashboard", "build_dashboard", "dashboard_html", "dashboard_json"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Totals:
    """This period so far and the whole previous period (``*_est``: the estimated part)."""

    this: float
    this_est: float
    last: float
    last_est: float
    last_same_days: float  # the previous period's first N days, N = days of this one so far


@dataclass(frozen=True, slots=True)
class MeterSummary:
    meter: PortalMeter
    totals: Totals
    active: bool  # subscribed at ``now``


@dataclass(frozen=True, slots=True)
class UnitSummary:
    """Meters of one unit added up; ``day_*`` are the daily sums of the current period."""

    unit: str
    totals: Totals
    day_starts: I64
    day_quantity: F64
    day_estimated: F64


@dataclass(frozen=True, slots=True)
class Dashboard:
    customer_name: str
    time_zone: str
    now: datetime
    period: BillingPeriod
    previous: BillingPeriod
    meters: tuple[MeterSummary, ...]
    units: tuple[UnitSummary, ...]
    draft: InvoiceSummary | None
    invoices: tuple[InvoiceSummary, ...]


def _totals(starts: I64, q: F64, e: F64, cut: int, now: datetime) -> Totals:
    cur = starts >= cut
    elapsed = int(np.count_nonzero(cur & (starts <= now.timestamp())))
    return Totals(
        this=float(q[cur].sum()),
        this_est=float(e[cur].sum()),
        last=float(q[~cur].sum()),
        last_est=float(e[~cur].sum()),
        last_same_days=float(q[~cur][:elapsed].sum()),
    )


def build_dashboard(
    *,
    customer_name: str,
    time_zone: str,
    now: datetime,
    period: BillingPeriod,
    previous: BillingPeriod,
    meters: Sequence[PortalMeter],
    daily: Sequence[MeterUsage],
    draft: InvoiceSummary | None,
    invoices: Sequence[InvoiceSummary],
) -> Dashboard:
    """``daily``: each meter's daily usage (customer's share) over ``[previous.start,
    period.end)``, in the order of ``meters``."""
    cut = int(period.start.timestamp())
    summaries = tuple(
        MeterSummary(
            m,
            _totals(u.starts, u.quantity, u.estimated, cut, now),
            any(w.start <= now and (w.end is None or w.end > now) for w in m.windows),
        )
        for m, u in zip(meters, daily, strict=True)
    )
    units: list[UnitSummary] = []
    for unit in sorted({m.usage_unit for m in meters}):
        idx = [i for i, m in enumerate(meters) if m.usage_unit == unit]
        q = np.sum([daily[i].quantity for i in idx], axis=0)
        e = np.sum([daily[i].estimated for i in idx], axis=0)
        starts = daily[idx[0]].starts
        cur = starts >= cut
        units.append(
            UnitSummary(
                unit=unit,
                totals=_totals(starts, q, e, cut, now),
                day_starts=starts[cur],
                day_quantity=q[cur],
                day_estimated=e[cur],
            )
        )
    return Dashboard(
        customer_name=customer_name,
        time_zone=time_zone,
        now=now,
        period=period,
        previous=previous,
        meters=summaries,
        units=tuple(units),
        draft=draft,
        invoices=tuple(invoices),
    )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _totals_json(t: Totals) -> dict[str, Any]:
    return {
        "this_period": t.this,
        "this_period_estimated": t.this_est,
        "this_period_estimated_share": share(t.this_est, t.this),
        "previous_period": t.last,
        "previous_period_estimated": t.last_est,
        "previous_period_estimated_share": share(t.last_est, t.last),
        "previous_period_same_days": t.last_same_days,
    }


def _invoice_json(inv: InvoiceSummary) -> dict[str, Any]:
    return {
        "invoice_id": inv.invoice_id,
        "number": inv.number,
        "status": inv.status,
        "period": inv.period,
        "currency": inv.currency,
        "subtotal": str(inv.subtotal),
        "tax": str(inv.tax),
        "total": str(inv.total),
        "drafted_at": _iso(inv.drafted_at),
        "finalized_at": _iso(inv.finalized_at),
    }


def dashboard_json(d: Dashboard) -> dict[str, Any]:
    """The dashboard's figures for ``GET /portal/consumption/current``."""
    return {
        "customer": d.customer_name,
        "time_zone": d.time_zone,
        "as_of": d.now.isoformat(),
        "period": {
            "key": str(d.period.key),
            "start": d.period.start.isoformat(),
            "end": d.period.end.isoformat(),
        },
        "previous_period": {
            "key": str(d.previous.key),
            "start": d.previous.start.isoformat(),
            "end": d.previous.end.isoformat(),
        },
        "meters": [
            {
                "series_id": s.meter.series_id,
                "device_id": s.meter.device_id,
                "meter": s.meter.meter,
                "metric": s.meter.metric,
                "unit": s.meter.unit,
                "usage_unit": s.meter.usage_unit,
                "active": s.active,
                **_totals_json(s.totals),
            }
            for s in d.meters
        ],
        "units": [{"unit": u.unit, **_totals_json(u.totals)} for u in d.units],
        "running_charge": None
        if d.draft is None
        else {**_invoice_json(d.draft), "note": "draft: an estimate until the period is closed"},
        "latest_invoices": [_invoice_json(i) for i in d.invoices],
    }


def _card(key: str, value: str, detail: str = "") -> str:
    d = f'<div class="d">{text(detail)}</div>' if detail else ""
    return (
        f'<div class="card"><div class="k">{text(key)}</div>'
        f'<div class="v">{text(value)}</div>{d}</div>'
    )


def _est(part: float, whole: float) -> str:
    s = share(part, whole)
    return f"{fig.percent(s)} estimated" if s > 0 else "all measured"


def _unit_cards(d: Dashboard) -> list[str]:
    out: list[str] = []
    for u in d.units:
        t = u.totals
        out.append(
            _card(
                f"This period so far ({u.unit})",
                fig.quantity(t.this, u.unit),
                _est(t.this_est, t.this),
            )
        )
        out.append(
            _card(
                f"Previous period ({u.unit})",
                fig.quantity(t.last, u.unit),
                f"{fig.quantity(t.last_same_days, u.unit)} by the same day · "
                + _est(t.last_est, t.last),
            )
        )
    return out


def _charge_card(d: Dashboard) -> str:
    if d.draft is None:
        return _card(
            "Running charge",
            "not available yet",
            "shown once your supplier has drafted this period's invoice",
        )
    when = fig.local(d.draft.drafted_at, d.time_zone)
    return _card(
        "Running charge (draft)",
        fig.money(d.draft.total, d.draft.currency),
        f"estimate incl. tax, as drafted {when}",
    )


def _unit_chart(d: Dashboard, k: int, u: UnitSummary) -> str:
    bars = [
        Bar(
            label=fig.local(_utc(int(s)), d.time_zone, "%d"),
            title=f"{fig.local(_utc(int(s)), d.time_zone, '%a %d %b')}: "
            f"{fig.quantity(float(q), u.unit)} ({_est(float(e), float(q))})",
            quantity=float(q),
            estimated=float(e),
        )
        for s, q, e in zip(u.day_starts, u.day_quantity, u.day_estimated, strict=True)
    ]
    svg = bar_chart(
        bars, unit=u.unit, chart_id=f"u{k}", caption=f"Daily consumption this period in {u.unit}"
    )
    return (
        f'<div class="panel"><strong>Daily consumption this period ({text(u.unit)})</strong>'
        '<div class="legend"><span><span class="sw act"></span>measured</span>'
        '<span><span class="sw est"></span>estimated</span></div>'
        f"{svg}</div>"
    )


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _meters_table(d: Dashboard) -> str:
    if not d.meters:
        return "<p>No meters are linked to your account yet.</p>"
    rows = []
    for s in d.meters:
        m, t = s.meter, s.totals
        tag = "" if s.active else ' <span class="tag">no longer yours</span>'
        rows.append(
            f'<tr><td><a href="/portal/meters/{m.series_id}">{text(m.name)}</a>{tag}</td>'
            f'<td class="n">{text(fig.quantity(t.this, m.usage_unit))}</td>'
            f'<td class="n">{text(fig.percent(share(t.this_est, t.this)))}</td>'
            f'<td class="n">{text(fig.quantity(t.last, m.usage_unit))}</td></tr>'
        )
    return (
        '<table><tr><th>Meter</th><th class="n">This period so far</th>'
        '<th class="n">Estimated</th><th class="n">Previous period</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _invoices_table(d: Dashboard) -> str:
    if not d.invoices:
        return "<p>No invoices yet.</p>"
    rows = [
        f'<tr><td><a href="/portal/invoices/{i.invoice_id}">{text(i.number or "")}</a></td>'
        f"<td>{text(i.period)}</td>"
        f'<td class="n">{text(fig.money(i.total, i.currency))}</td>'
        f'<td><a href="/portal/invoices/{i.invoice_id}?format=pdf">PDF</a></td></tr>'
        for i in d.invoices
    ]
    return (
        '<table><tr><th>Invoice</th><th>Period</th><th class="n">Total</th><th></th></tr>'
        + "".join(rows)
        + "</table>"
    )


def dashboard_html(d: Dashboard) -> str:
    """The dashboard's body (HTML, everything escaped)."""
    last_day = d.period.end_day.toordinal() - 1
    period_text = (
        f"Billing period {d.period.first_day:%d %b %Y} – {date.fromordinal(last_day):%d %b %Y}"
    )
    return fill(
        "dashboard.html",
        period_text=text(period_text),
        time_zone=text(d.time_zone),
        as_of=text(fig.local(d.now, d.time_zone)),
        cards="\n".join([*_unit_cards(d), _charge_card(d)]),
        charts="".join(_unit_chart(d, k, u) for k, u in enumerate(d.units)),
        meters=_meters_table(d),
        invoices=_invoices_table(d),
        estimate_note=text(ESTIMATE_NOTE),
    )
