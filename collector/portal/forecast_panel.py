"""The dashboard's forecast panel: the bill expected for the current period with its range, from
the analytics forecast (``collector.analytics.bill_forecast``), in the customer's language and
currency.

Honest states: no forecast at all when nothing has been recorded for the customer's meters in
the period (a forecast of nothing is not "0.00"), and a plain warning when the meters have less
than a week of readings (``SHORT_DAYS``): then the forecast rests on a few days (or is a straight
line) and its range is wide. The days of readings are the forecast's own (counted from the first
bucket with usage, see ``collector.analytics.forecast``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from collector.analytics.bill_forecast import BillForecast
from collector.portal.layout import text
from collector.portal.locale_format import LocalFormat
from collector.portal.words import Words

__all__ = ["SHORT_DAYS", "PortalForecast", "forecast_html", "forecast_json", "portal_forecast"]

SHORT_DAYS: Final = 7.0


@dataclass(frozen=True, slots=True)
class PortalForecast:
    """The bill forecast and how many days of readings it rests on."""

    bill: BillForecast

    @property
    def history_days(self) -> float:
        return self.bill.history_days

    @property
    def short(self) -> bool:
        return not self.bill.patterned or self.history_days < SHORT_DAYS


def portal_forecast(bill: BillForecast) -> PortalForecast | None:
    """The forecast for the panel; None when the period has no usage yet."""
    if bill.to_date.quantity <= 0:
        return None
    return PortalForecast(bill)


def forecast_json(pf: PortalForecast | None) -> dict[str, Any] | None:
    """The forecast's figures (totals incl. tax, as decimal strings) or None (too little data)."""
    if pf is None:
        return None
    fc = pf.bill
    return {
        "period": fc.period,
        "currency": fc.currency,
        "as_of": fc.as_of.isoformat(),
        "so_far": str(fc.to_date.total),
        "expected": str(fc.expected.total),
        "low": str(fc.low.total),
        "high": str(fc.high.total),
        "patterned": fc.patterned,
        "history_days": round(pf.history_days, 2),
        "short_history": pf.short,
    }


def forecast_html(pf: PortalForecast | None, f: LocalFormat, w: Words) -> str:
    """The ``#forecast`` panel (HTML, everything escaped)."""
    head = (
        '<section class="panel slot" id="forecast" data-slot="forecast"'
        f' aria-labelledby="forecast-h"><h2 id="forecast-h">{text(w["forecast"])}</h2>'
    )
    if pf is None:
        return (
            f'{head}<p class="note" data-state="no-data">{text(w["forecast_none"])}</p></section>'
        )
    fc = pf.bill
    cur = fc.currency
    low, high = f.money(fc.low.total, cur), f.money(fc.high.total, cur)
    note = w["forecast_straight"] if pf.short else w["forecast_basis"]
    return (
        f'{head}<dl class="cards forecast">'
        f'<div class="card"><dt class="k">{text(w["forecast_expected"])}</dt>'
        f'<dd class="v" data-forecast="expected">{text(f.money(fc.expected.total, cur))}</dd>'
        f'<dd class="d" data-forecast="range">{text(w["forecast_range"])}'
        f' <span data-forecast="low">{text(low)}</span> {text(w["forecast_and"])}'
        f' <span data-forecast="high">{text(high)}</span></dd></div>'
        f'<div class="card"><dt class="k">{text(w["forecast_so_far"])}</dt>'
        f'<dd class="v">{text(f.money(fc.to_date.total, cur))}</dd>'
        f'<dd class="d">{text(f.day(fc.as_of))} {text(f.clock(fc.as_of))}</dd></div></dl>'
        f'<p class="note" data-state="{"short" if pf.short else "patterned"}">'
        f"{text(note)}</p></section>"
    )
