"""The customer's alert settings: the dashboard's ``#alerts`` panel and the alerts page with
its forms (add a threshold on usage or on the bill amount, remove one), and the recent alerts.

Pure: rules and alerts in, escaped HTML out. Every form carries the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from collector.alerts.rules import AlertRule, Metric
from collector.portal.layout import text
from collector.portal.locale_format import LocalFormat
from collector.portal.words import Words
from collector.storage.alert_store import Alert

__all__ = ["AlertsView", "alerts_json", "alerts_page_html", "alerts_slot_html", "own_view"]


@dataclass(frozen=True, slots=True)
class AlertsView:
    """The customer's own active rules, its recent alerts (of its own rules), the units of its
    meters (what a usage threshold can be set on) and its currency."""

    rules: tuple[AlertRule, ...]
    recent: tuple[Alert, ...]
    units: tuple[str, ...]
    currency: str
    owned: tuple[AlertRule, ...] = ()  # every rule of the customer's, stopped ones included


def own_view(
    customer_id: int,
    rules: Sequence[AlertRule],
    alerts: Sequence[Alert],
    units: Sequence[str],
    currency: str,
    *,
    recent: int = 10,
) -> AlertsView:
    """Keep only what the customer set itself (``owner='customer'``) and the alerts of those
    rules: staff rules about the customer stay internal."""
    own = [r for r in rules if r.owner == "customer" and r.customer_id == customer_id]
    ids = {r.rule_id for r in own}
    return AlertsView(
        rules=tuple(r for r in own if r.active),
        recent=tuple(a for a in alerts if a.rule_id in ids and a.customer_id == customer_id)[
            :recent
        ],
        units=tuple(sorted(set(units))),
        currency=currency,
        owned=tuple(own),
    )


def _amount(value: Decimal, rule: AlertRule | None, v: AlertsView, f: LocalFormat) -> str:
    if rule is not None and rule.metric is Metric.QUANTITY:
        return f"{f.number(value, 3)} {rule.unit or ''}".rstrip()
    return f.money(value, v.currency)


def _describe(r: AlertRule, v: AlertsView, f: LocalFormat, w: Words) -> str:
    what = w["alert_quantity"] if r.metric is Metric.QUANTITY else w["alert_amount"]
    if r.relative:
        limit = f"{f.number(r.threshold, 2)} % · {w['previous_period']}"
    else:
        limit = _amount(r.threshold, r, v, f)
    name = f"{r.name}: " if r.name else ""
    return f"{name}{what} ≥ {limit}"


def _rules_list(v: AlertsView, f: LocalFormat, w: Words, csrf: str | None) -> str:
    if not v.rules:
        return f'<p class="note" data-state="no-rules">{text(w["alert_no_rules"])}</p>'
    items = []
    for r in v.rules:
        form = (
            ""
            if csrf is None
            else f'<form method="post" action="/portal/alerts/{r.rule_id}/remove" class="inline">'
            f'<input type="hidden" name="csrf" value="{text(csrf)}">'
            f'<button type="submit" aria-label="{text(w["alert_remove"])}: '
            f'{text(_describe(r, v, f, w))}">{text(w["alert_remove"])}</button></form>'
        )
        items.append(
            f'<li data-rule="{r.rule_id}"><span>{text(_describe(r, v, f, w))}</span> {form}</li>'
        )
    return '<ul class="rules">' + "".join(items) + "</ul>"


def _recent_table(v: AlertsView, f: LocalFormat, w: Words) -> str:
    if not v.recent:
        return f'<p class="note" data-state="no-alerts">{text(w["alert_none"])}</p>'
    by_id = {r.rule_id: r for r in v.owned or v.rules}
    rows = "".join(
        f"<tr><td>{text(f.day(a.crossed_at))} {text(f.clock(a.crossed_at))}</td>"
        f"<td>{text(a.period)}</td>"
        f'<td class="n">{text(_amount(a.value, by_id.get(a.rule_id), v, f))}</td>'
        f'<td class="n">{text(_amount(a.limit_value, by_id.get(a.rule_id), v, f))}</td></tr>'
        for a in v.recent
    )
    return (
        f'<div class="scroll" tabindex="0"><table><tr><th scope="col">{text(w["alert_when"])}</th>'
        f'<th scope="col">{text(w["period"])}</th>'
        f'<th class="n" scope="col">{text(w["alert_value"])}</th>'
        f'<th class="n" scope="col">{text(w["alert_limit"])}</th></tr>{rows}</table></div>'
    )


def alerts_slot_html(v: AlertsView, f: LocalFormat, w: Words) -> str:
    """The dashboard's ``#alerts`` panel: the rules set, recent alerts, a link to the page."""
    return (
        '<section class="panel slot" id="alerts" data-slot="alerts"'
        f' aria-labelledby="alerts-h"><h2 id="alerts-h">{text(w["alerts"])}</h2>'
        f"{_rules_list(v, f, w, None)}{_recent_table(v, f, w)}"
        f'<p class="nav"><a href="/portal/alerts">{text(w["alerts_manage"])}</a></p></section>'
    )


def _add_form(v: AlertsView, w: Words, csrf: str) -> str:
    units = "".join(f'<option value="{text(u)}">{text(u)}</option>' for u in v.units)
    return (
        '<form method="post" action="/portal/alerts" class="alert-form">'
        f'<input type="hidden" name="csrf" value="{text(csrf)}">'
        f'<p><label for="a-metric">{text(w["alert_what"])}</label>'
        '<select id="a-metric" name="metric">'
        f'<option value="quantity">{text(w["alert_quantity"])}</option>'
        f'<option value="amount">{text(w["alert_amount"])} ({text(v.currency)})</option>'
        "</select></p>"
        f'<p><label for="a-unit">{text(w["alert_unit"])}</label>'
        f'<select id="a-unit" name="unit"><option value="">—</option>{units}</select></p>'
        f'<p><label for="a-threshold">{text(w["alert_threshold"])}</label>'
        '<input id="a-threshold" name="threshold" inputmode="decimal" required'
        ' maxlength="20" autocomplete="off"></p>'
        '<p><input type="checkbox" id="a-relative" name="relative" value="1">'
        f' <label for="a-relative">{text(w["alert_relative"])}</label></p>'
        f'<p><label for="a-name">{text(w["alert_name"])}</label>'
        '<input id="a-name" name="name" maxlength="200" autocomplete="off"></p>'
        f'<p><button type="submit">{text(w["alert_add"])}</button></p></form>'
    )


def alerts_page_html(
    v: AlertsView, f: LocalFormat, w: Words, csrf: str, error: str | None = None
) -> str:
    """The alerts page: intro, an error (if a form was refused), rules with remove buttons,
    the add form and the recent alerts."""
    err = (
        f'<p class="error" role="alert">{text(w["alert_bad"])}: {text(error)}</p>' if error else ""
    )
    return (
        f'<h1>{text(w["alerts"])}</h1><p class="sub">{text(w["alerts_intro"])}</p>{err}'
        f"<h2>{text(w['alert_rules'])}</h2>{_rules_list(v, f, w, csrf)}"
        f"<h2>{text(w['alert_add'])}</h2>{_add_form(v, w, csrf)}"
        f"<h2>{text(w['alert_recent'])}</h2>{_recent_table(v, f, w)}"
    )


def alerts_json(v: AlertsView) -> dict[str, Any]:
    """The customer's alert settings for API clients."""
    return {
        "rules": [
            {
                "rule_id": r.rule_id,
                "metric": r.metric.value,
                "unit": r.unit,
                "threshold": str(r.threshold),
                "relative": r.relative,
                "name": r.name,
            }
            for r in v.rules
        ],
        "recent_alerts": [
            {
                "alert_id": a.alert_id,
                "rule_id": a.rule_id,
                "period": a.period,
                "value": str(a.value),
                "limit_value": str(a.limit_value),
                "crossed_at": a.crossed_at.isoformat(),
            }
            for a in v.recent
        ],
        "units": list(v.units),
        "currency": v.currency,
    }
