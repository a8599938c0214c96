"""One meter: its usage (the customer's share) as JSON, and the page with daily bars for a
month or hourly bars for a day, with previous/next navigation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collector.portal import figures as fig
from collector.portal.charts import Bar, bar_chart
from collector.portal.consumption import MeterUsage, share
from collector.portal.layout import ESTIMATE_NOTE, fill, text
from collector.portal.model import PortalMeter
from collector.portal.navigation import MeterView

__all__ = ["meter_html", "meter_json", "meters_json"]


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _windows_json(m: PortalMeter) -> list[dict[str, str | None]]:
    return [
        {"from": w.start.isoformat(), "to": w.end.isoformat() if w.end else None} for w in m.windows
    ]


def meters_json(meters: list[PortalMeter], now: datetime) -> list[dict[str, Any]]:
    """The customer's meters with the windows during which they were (are) the customer's."""
    return [
        {
            "series_id": m.series_id,
            "device_id": m.device_id,
            "meter": m.meter,
            "metric": m.metric,
            "unit": m.unit,
            "usage_unit": m.usage_unit,
            "kind": m.kind,
            "active": any(w.start <= now and (w.end is None or w.end > now) for w in m.windows),
            "subscriptions": _windows_json(m),
        }
        for m in meters
    ]


def meter_json(m: PortalMeter, u: MeterUsage, tz: str) -> dict[str, Any]:
    """``GET /portal/consumption/meters/{id}``: totals and buckets (only the customer's part)."""
    return {
        "series_id": m.series_id,
        "device_id": m.device_id,
        "meter": m.meter,
        "metric": m.metric,
        "unit": m.unit,
        "usage_unit": m.usage_unit,
        "time_zone": tz,
        "resolution": u.resolution.value,
        "subscriptions": _windows_json(m),
        "total": u.total,
        "total_estimated": u.total_estimated,
        "estimated_share": u.estimated_share,
        "buckets": [
            {
                "start": _utc(int(s)).isoformat(),
                "end": _utc(int(e)).isoformat(),
                "quantity": float(q),
                "estimated": float(est),
                "estimated_share": share(float(est), float(q)),
                "coverage": float(c),
                "subscribed": float(sub),
            }
            for s, e, q, est, c, sub in zip(
                u.starts, u.ends, u.quantity, u.estimated, u.coverage, u.subscribed, strict=True
            )
        ],
    }


def _est(part: float, whole: float) -> str:
    s = share(part, whole)
    return f"{fig.percent(s)} estimated" if s > 0 else "all measured"


def _ownership(m: PortalMeter, tz: str) -> str:
    parts = []
    for w in m.windows:
        since = fig.local(w.start, tz)
        parts.append(
            f"yours since {since}" if w.end is None else f"yours {since} – {fig.local(w.end, tz)}"
        )
    return "; ".join(parts)


def meter_html(m: PortalMeter, view: MeterView, u: MeterUsage, tz: str) -> str:
    """The meter page's body (HTML, everything escaped)."""
    month = view.kind == "month"
    label_fmt, title_fmt = ("%d", "%a %d %b") if month else ("%H", "%H:%M")
    bars: list[Bar] = []
    rows: list[str] = []
    for s, q, est, sub in zip(u.starts, u.quantity, u.estimated, u.subscribed, strict=True):
        start = _utc(int(s))
        qf, ef = float(q), float(est)
        title = (
            f"{fig.local(start, tz, title_fmt)}: {fig.quantity(qf, m.usage_unit)} ({_est(ef, qf)})"
        )
        href = f"?day={fig.local(start, tz, '%Y-%m-%d')}" if month else None
        bars.append(Bar(fig.local(start, tz, label_fmt), title, qf, ef, href))
        value = fig.quantity(qf, m.usage_unit) if sub > 0 else "not yours"
        link = (
            f'<a href="{text(href)}">{text(fig.local(start, tz, title_fmt))}</a>'
            if href
            else text(fig.local(start, tz, title_fmt))
        )
        rows.append(
            f'<tr><td>{link}</td><td class="n">{text(value)}</td>'
            f'<td class="n">{text(fig.quantity(ef, m.usage_unit))}</td></tr>'
        )
    kind = "month" if month else "day"
    chart = bar_chart(
        bars,
        unit=m.usage_unit,
        chart_id="meter",
        caption=f"{'Daily' if month else 'Hourly'} consumption, {view.label}",
    )
    cards = [
        f'<div class="card"><div class="k">Total, {text(view.label)}</div>'
        f'<div class="v">{text(fig.quantity(u.total, m.usage_unit))}</div>'
        f'<div class="d">{text(_est(u.total_estimated, u.total))}</div></div>',
    ]
    up = f' <a href="?{text(view.up)}">Whole month</a>' if view.up else ""
    return fill(
        "meter.html",
        meter_name=text(m.name),
        meter_detail=text(f"{m.kind} meter in {m.unit} · {_ownership(m, tz)} · times in {tz}"),
        prev=text(view.prev),
        next=text(view.next),
        prev_label=text(f"Previous {kind}"),
        next_label=text(f"Next {kind}"),
        view_label=text(view.label),
        up=up,
        cards="\n".join(cards),
        chart=chart,
        hint=text("Click a day to see it hour by hour." if month else ""),
        table_title=text("Per day" if month else "Per hour"),
        table=(
            "<table><tr><th>" + ("Day" if month else "Hour") + '</th><th class="n">Consumption'
            '</th><th class="n">of which estimated</th></tr>' + "".join(rows) + "</table>"
        ),
        estimate_note=text(ESTIMATE_NOTE),
    )
