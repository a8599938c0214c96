"""The dashboard: this billing period so far against the previous one, per meter and per unit,
the running charge from the period's draft invoice (if a close run made one), latest invoices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from collector.billing.model import InvoiceLine
from collector.billing.periods import BillingPeriod
from collector.portal.alerts_panel import AlertsView, alerts_slot_html
from collector.portal.charts import Bar, bar_chart
from collector.portal.consumption import BucketState, MeterUsage, share
from collector.portal.forecast_panel import PortalForecast, forecast_html, forecast_json
from collector.portal.layout import fill, text
from collector.portal.locale_format import LocalFormat
from collector.portal.model import InvoiceSummary, PortalMeter
from collector.portal.words import Words

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
    day_ends: I64
    day_quantity: F64
    day_estimated: F64
    day_coverage: F64  # the best-covered meter's coverage of each day (0: no data at all)


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
    draft_lines: tuple[InvoiceLine, ...] = ()
    data_as_of: datetime | None = None
    forecast: PortalForecast | None = None  # None: too little data for a forecast
    alerts: AlertsView | None = None


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
    draft_lines: Sequence[InvoiceLine] = (),
    data_as_of: datetime | None = None,
    forecast: PortalForecast | None = None,
    alerts: AlertsView | None = None,
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
        cov = np.max([daily[i].coverage * (daily[i].subscribed > 0) for i in idx], axis=0)
        starts, ends = daily[idx[0]].starts, daily[idx[0]].ends
        cur = starts >= cut
        units.append(
            UnitSummary(
                unit=unit,
                totals=_totals(starts, q, e, cut, now),
                day_starts=starts[cur],
                day_ends=ends[cur],
                day_quantity=q[cur],
                day_estimated=e[cur],
                day_coverage=cov[cur],
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
        draft_lines=tuple(draft_lines),
        data_as_of=data_as_of,
        forecast=forecast,
        alerts=alerts,
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
        "data_as_of": _iso(d.data_as_of),
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
        "forecast": forecast_json(d.forecast),
    }


def _card(key: str, value: str, detail: str = "") -> str:
    d = f'<div class="d">{text(detail)}</div>' if detail else ""
    return (
        f'<div class="card"><div class="k">{text(key)}</div>'
        f'<div class="v">{text(value)}</div>{d}</div>'
    )


def _est(part: float, whole: float, f: LocalFormat, w: Words) -> str:
    s = share(part, whole)
    return f"{f.percent(s)} {w['estimated']}" if s > 0 else w["all_measured"]


def _unit_cards(d: Dashboard, f: LocalFormat, w: Words) -> list[str]:
    out: list[str] = []
    for u in d.units:
        t = u.totals
        out.append(
            _card(
                f"{w['this_period']} ({u.unit})",
                f.quantity(t.this, u.unit),
                _est(t.this_est, t.this, f, w),
            )
        )
        out.append(
            _card(
                f"{w['previous_period']} ({u.unit})",
                f.quantity(t.last, u.unit),
                f"{f.quantity(t.last_same_days, u.unit)} {w['by_same_day']} · "
                + _est(t.last_est, t.last, f, w),
            )
        )
    return out


def _charge_card(d: Dashboard, f: LocalFormat, w: Words) -> str:
    if d.draft is None:
        return _card(w["running_charge"], w["running_charge_none"], w["running_charge_none_detail"])
    return _card(
        w["running_charge"],
        f.money(d.draft.total, d.draft.currency),
        f"{w['running_charge_detail']} {f.moment(d.draft.drafted_at)}",
    )


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _day_state(start: int, end: int, coverage: float, now: datetime) -> BucketState:
    t = now.timestamp()
    if start >= t:
        return BucketState.FUTURE
    if coverage <= 0:
        return BucketState.NO_DATA
    return BucketState.PARTIAL if end > t or coverage < 1 - 1e-9 else BucketState.MEASURED


def _bar_title(
    day: str, state: BucketState, q: float, e: float, *, unit: str, f: LocalFormat, w: Words
) -> str:
    if state is BucketState.FUTURE:
        return f"{day}: {w['future']}"
    if state is BucketState.NO_DATA:
        return f"{day}: {w['no_data']}"
    return f"{day}: {f.quantity(q, unit)} ({_est(e, q, f, w)})"


def _unit_chart(d: Dashboard, k: int, u: UnitSummary, f: LocalFormat, w: Words) -> str:
    bars = []
    for s, end, q, e, c in zip(
        u.day_starts, u.day_ends, u.day_quantity, u.day_estimated, u.day_coverage, strict=True
    ):
        start = _utc(int(s))
        state = _day_state(int(s), int(end), float(c), d.now)
        bars.append(
            Bar(
                label=f.day_pattern(start, "d"),
                title=_bar_title(
                    f.day_pattern(start, "EEE d MMM"),
                    state,
                    float(q),
                    float(e),
                    unit=u.unit,
                    f=f,
                    w=w,
                ),
                quantity=float(q),
                estimated=float(e),
                state=state.value,
            )
        )
    caption = f"{w['daily_this_period']} ({u.unit})"
    svg = bar_chart(bars, unit=u.unit, chart_id=f"u{k}", caption=caption)
    return f'<div class="panel"><h3>{text(caption)}</h3>{_legend(w)}{svg}</div>'


def _legend(w: Words) -> str:
    return (
        f'<div class="legend"><span><span class="sw act"></span>{text(w["measured"])}</span>'
        f'<span><span class="sw est"></span>{text(w["estimated"])}</span>'
        f'<span><span class="sw none"></span>{text(w["no_data"])}</span></div>'
    )


def _meters_table(d: Dashboard, f: LocalFormat, w: Words) -> str:
    if not d.meters:
        return f"<p>{text(w['no_meters'])}</p>"
    rows = []
    for s in d.meters:
        m, t = s.meter, s.totals
        tag = "" if s.active else f' <span class="tag">{text(w["not_yours"])}</span>'
        rows.append(
            f'<tr><td><a href="/portal/meters/{m.series_id}">{text(m.name)}</a>{tag}</td>'
            f'<td class="n">{text(f.quantity(t.this, m.usage_unit))}</td>'
            f'<td class="n">{text(f.percent(share(t.this_est, t.this)))}</td>'
            f'<td class="n">{text(f.quantity(t.last, m.usage_unit))}</td></tr>'
        )
    return (
        f'<div class="scroll" tabindex="0"><table><tr><th scope="col">{text(w["meter"])}</th>'
        f'<th class="n" scope="col">{text(w["this_period"])}</th>'
        f'<th class="n" scope="col">{text(w["estimated"])}</th>'
        f'<th class="n" scope="col">{text(w["previous_period"])}</th></tr>'
        + "".join(rows)
        + "</table></div>"
    )


def _tou_table(d: Dashboard, f: LocalFormat, w: Words) -> str:
    """The draft's lines added up per charge and time-of-use period."""
    if d.draft is None or not d.draft_lines:
        return f'<p class="note">{text(w["tou_none"])}</p>'
    groups: dict[tuple[str, str, str], tuple[Decimal, Decimal]] = {}
    for ln in d.draft_lines:
        key = (ln.description, ln.tou_period or "", ln.unit)
        q, a = groups.get(key, (Decimal(0), Decimal(0)))
        groups[key] = (q + ln.quantity, a + ln.amount)
    rows = "".join(
        f'<tr><td class="t">{text(desc)}</td>'
        f"<td>{text(tou or '—')}</td>"
        f'<td class="n">{text(f.number(q, 3))} {text(unit)}</td>'
        f'<td class="n">{text(f.money(a, d.draft.currency))}</td></tr>'
        for (desc, tou, unit), (q, a) in groups.items()
    )
    return (
        f'<div class="scroll" tabindex="0"><table><tr><th scope="col">{text(w["charge"])}</th>'
        f'<th scope="col">{text(w["time_of_use"])}</th>'
        f'<th class="n" scope="col">{text(w["quantity"])}</th>'
        f'<th class="n" scope="col">{text(w["amount"])}</th></tr>{rows}</table></div>'
    )


def _invoices_table(d: Dashboard, f: LocalFormat, w: Words) -> str:
    if not d.invoices:
        return f"<p>{text(w['no_invoices'])}</p>"
    rows = [
        f'<tr><td><a href="/portal/invoices/{i.invoice_id}">{text(i.number or "")}</a></td>'
        f"<td>{text(i.period)}</td>"
        f'<td class="n">{text(f.money(i.total, i.currency))}</td>'
        f'<td><a href="/portal/invoices/{i.invoice_id}?format=pdf"'
        f' aria-label="{text(w["download"])} PDF {text(i.number or "")}">PDF</a></td></tr>'
        for i in d.invoices
    ]
    return (
        f'<div class="scroll" tabindex="0"><table><tr><th scope="col">{text(w["invoice"])}</th>'
        f'<th scope="col">{text(w["period"])}</th>'
        f'<th class="n" scope="col">{text(w["total"])}</th>'
        f'<th scope="col">{text(w["download"])}</th></tr>' + "".join(rows) + "</table></div>"
    )


def _slot(slot_id: str, title: str, body: str) -> str:
    """A panel another part of Tally fills (forecast, alerts): marked as such."""
    return (
        f'<section class="panel slot" id="{slot_id}" data-slot="{slot_id}"'
        f' aria-labelledby="{slot_id}-h"><h2 id="{slot_id}-h">{text(title)}</h2>'
        f'<p class="note">{text(body)}</p></section>'
    )


def dashboard_html(d: Dashboard, f: LocalFormat, w: Words) -> str:
    """The dashboard's body (HTML, everything escaped) in the customer's language and zone."""
    last_day = date.fromordinal(d.period.end_day.toordinal() - 1)
    period_text = f"{w['billing_period']} {f.day(d.period.first_day)} – {f.day(last_day)}"
    fresh = (
        f"{f.day(d.data_as_of)} {f.clock(d.data_as_of, seconds=True)}"
        if d.data_as_of
        else w["no_readings_yet"]
    )
    return fill(
        "dashboard.html",
        title=text(w["dashboard"]),
        period_text=text(period_text),
        times_in=text(w["times_in"]),
        time_zone=text(d.time_zone),
        as_of_label=text(w["data_as_of"] if d.data_as_of else ""),
        as_of=text(fresh),
        cards="\n".join([*_unit_cards(d, f, w), _charge_card(d, f, w)]),
        forecast=forecast_html(d.forecast, f, w),
        charts="".join(_unit_chart(d, k, u, f, w) for k, u in enumerate(d.units)),
        tou_title=text(w["tou"]),
        tou=_tou_table(d, f, w),
        meters_title=text(w["meters"]),
        meters=_meters_table(d, f, w),
        invoices_title=text(w["latest_invoices"]),
        invoices=_invoices_table(d, f, w),
        all_invoices=text(w["invoices"]),
        alerts=_slot("alerts", w["alerts"], w["alerts_slot"])
        if d.alerts is None
        else alerts_slot_html(d.alerts, f, w),
        estimate_note=text(w["estimate_note"]),
    )
