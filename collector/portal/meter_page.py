"""One meter: its usage (the customer's share) as JSON, and the page with daily bars for a
month or hourly bars for a day, with previous/next navigation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from collector.portal.charts import Bar, bar_chart
from collector.portal.consumption import BucketState, MeterUsage, bucket_states, share
from collector.portal.layout import fill, text
from collector.portal.locale_format import LocalFormat
from collector.portal.model import PortalMeter
from collector.portal.navigation import MeterView
from collector.portal.words import Words

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


def meter_json(m: PortalMeter, u: MeterUsage, tz: str, now: datetime) -> dict[str, Any]:
    """``GET /portal/consumption/meters/{id}``: totals and buckets (only the customer's part);
    a bucket that has not begun has ``quantity`` null and state ``future``."""
    states = bucket_states(u, now)
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
                "state": st.value,
                "quantity": None if st is BucketState.FUTURE else float(q),
                "estimated": None if st is BucketState.FUTURE else float(est),
                "estimated_share": share(float(est), float(q)),
                "coverage": float(c),
                "subscribed": float(sub),
            }
            for s, e, q, est, c, sub, st in zip(
                u.starts,
                u.ends,
                u.quantity,
                u.estimated,
                u.coverage,
                u.subscribed,
                states,
                strict=True,
            )
        ],
    }


def _est(part: float, whole: float, f: LocalFormat, w: Words) -> str:
    s = share(part, whole)
    return f"{f.percent(s)} {w['estimated']}" if s > 0 else w["all_measured"]


def _ownership(m: PortalMeter, f: LocalFormat) -> str:
    parts = []
    for win in m.windows:
        since = f.moment(win.start)
        parts.append(f"{since} –" if win.end is None else f"{since} – {f.moment(win.end)}")
    return "; ".join(parts)


def _when(start: datetime, view: MeterView, f: LocalFormat) -> tuple[str, str]:
    """(axis label, full label) of a bucket: days by date, hours with their UTC offset."""
    if view.kind == "month":
        return f.day_pattern(start, "d"), f.day_pattern(start, "EEE d MMM")
    return f.clock(start), f.hour(start)


def _label(view: MeterView, f: LocalFormat) -> str:
    """The view's name in the customer's language: ``April 2026`` / ``april 2026``, or a day."""
    assert view.first_day is not None
    if view.kind == "month":
        return f.month(view.first_day)
    return f.day(view.first_day, "full")


def _value(st: BucketState, q: float, unit: str, f: LocalFormat, w: Words) -> str:
    if st is BucketState.FUTURE:
        return ""
    if st is BucketState.NOT_YOURS:
        return w["not_yours"]
    if st is BucketState.NO_DATA:
        return w["no_data"]
    return f.quantity(q, unit)


def _res_switch(view: MeterView, w: Words, today: date) -> str:
    """Links to the same time at another resolution (day / hour / 15 minutes); from a month,
    the hours shown are today's when today is in that month, else the month's first day's."""
    assert view.first_day is not None
    same_month = (today.year, today.month) == (view.first_day.year, view.first_day.month)
    day = (today if view.kind == "month" and same_month else view.first_day).isoformat()
    month = f"{view.first_day.year:04d}-{view.first_day.month:02d}"
    options = (
        ("1d", f"?month={month}", w["per_day"]),
        ("1h", f"?day={day}", w["per_hour"]),
        ("15m", f"?day={day}&res=15m", w["per_15m"]),
    )
    links = "".join(
        f'<a href="{text(href)}"'
        + (' aria-current="page"' if view.resolution.value == res else "")
        + f' data-res="{res}">{text(label)}</a>'
        for res, href, label in options
    )
    return f'<nav class="nav" aria-label="{text(w["resolution"])}">{links}</nav>'


def _comparison(
    u: MeterUsage,
    earlier: MeterUsage,
    before: MeterView,
    *,
    unit: str,
    f: LocalFormat,
    w: Words,
    now: datetime,
) -> str:
    detail = ""
    complete = int(u.ends[-1]) <= now.timestamp() if u.ends.size else False
    if earlier.total > 0 and complete:  # a running period is not compared with a whole one
        change = (u.total - earlier.total) / earlier.total
        detail = f"{w['change']} {'+' if change >= 0 else ''}{f.percent(abs(change))}"
        if change < 0:
            detail = detail.replace("+", "").replace(w["change"] + " ", w["change"] + " −")
    return (
        f'<div class="card"><div class="k">{text(w["compare"])} {text(_label(before, f))}</div>'
        f'<div class="v">{text(f.quantity(earlier.total, unit))}</div>'
        f'<div class="d">{text(detail)}</div></div>'
    )


def meter_html(
    m: PortalMeter,
    view: MeterView,
    u: MeterUsage,
    *,
    earlier: MeterUsage,
    before: MeterView,
    f: LocalFormat,
    w: Words,
    now: datetime,
) -> str:
    """The meter page's body (HTML, everything escaped): resolution switch, chart, totals
    compared with the period before, and a table of every bucket."""
    month = view.kind == "month"
    unit = m.usage_unit
    bars: list[Bar] = []
    rows: list[str] = []
    # the earlier period at the same resolution, aligned bucket by bucket (day n with day n,
    # hour n with hour n): only buckets that exist in both are compared
    earlier_q = [float(x) for x in earlier.quantity]
    for k, (s, q, est, st) in enumerate(
        zip(u.starts, u.quantity, u.estimated, bucket_states(u, now), strict=True)
    ):
        start = _utc(int(s))
        qf, ef = float(q), float(est)
        short, full = _when(start, view, f)
        value = _value(st, qf, unit, f, w)
        detail = (
            value
            if st in (BucketState.FUTURE, BucketState.NO_DATA, BucketState.NOT_YOURS)
            else f"{value} ({_est(ef, qf, f, w)})"
        )
        href = f"?day={f.day_pattern(start, 'yyyy-MM-dd')}" if month else None
        cmp = earlier_q[k] if k < len(earlier_q) else None
        bars.append(
            Bar(short, f"{full}: {detail or w['future']}", qf, ef, href, st.value, compare=cmp)
        )
        link = f'<a href="{text(href)}">{text(full)}</a>' if href else text(full)
        cls = (
            ' class="n none"'
            if st in (BucketState.NO_DATA, BucketState.NOT_YOURS)
            else ' class="n"'
        )
        est_cell = (
            ""
            if st in (BucketState.FUTURE, BucketState.NO_DATA, BucketState.NOT_YOURS)
            else f.quantity(ef, unit)
        )
        rows.append(
            f'<tr data-state="{st.value}"><th scope="row">{link}</th><td{cls}>{text(value)}</td>'
            f'<td class="n">{text(est_cell)}</td></tr>'
        )
    per = (
        w["per_day"]
        if month
        else (w["per_15m"] if view.resolution.value == "15m" else w["per_hour"])
    )
    chart = bar_chart(bars, unit=unit, chart_id="meter", caption=f"{per}: {_label(view, f)}")
    cards = [
        f'<div class="card"><div class="k">{text(w["total"])}, {text(_label(view, f))}</div>'
        f'<div class="v" data-total="{u.total!r}">{text(f.quantity(u.total, unit))}</div>'
        f'<div class="d">{text(_est(u.total_estimated, u.total, f, w))}</div></div>',
        _comparison(u, earlier, before, unit=unit, f=f, w=w, now=now),
    ]
    up = f' <a href="?{text(view.up)}">{text(w["whole_month"])}</a>' if view.up else ""
    return fill(
        "meter.html",
        back=text(w["dashboard"]),
        meter_name=text(m.name),
        meter_detail=text(
            f"{w.get('kind_' + m.kind, m.kind)} · {m.unit} · {_ownership(m, f)}"
            f" · {w['times_in']} {f.time_zone}"
        ),
        switch=_res_switch(view, w, now.astimezone(f.zone).date()),
        prev=text(view.prev),
        next=text(view.next),
        prev_label=text(w["previous"]),
        next_label=text(w["next"]),
        view_label=text(_label(view, f)),
        up=up,
        cards="\n".join(cards),
        legend=(
            f'<div class="legend"><span><span class="sw act"></span>{text(w["measured"])}</span>'
            f'<span><span class="sw est"></span>{text(w["estimated"])}</span>'
            f'<span><span class="sw none"></span>{text(w["no_data"])}</span>'
            f'<span><span class="sw cmp"></span>{text(_label(before, f))}</span></div>'
        ),
        chart=chart,
        hint=text(w["click_day"] if month else ""),
        table_title=text(per),
        table=(
            f'<div class="scroll" tabindex="0"><table><tr><th scope="col">{text(w["when"])}</th>'
            f'<th class="n" scope="col">{text(w["consumption"])}</th>'
            f'<th class="n" scope="col">{text(w["of_which_estimated"])}</th></tr>'
            + "".join(rows)
            + "</table></div>"
        ),
        estimate_note=text(w["estimate_note"]),
    )
