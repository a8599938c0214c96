"""The bill of the current period: running charge so far, forecast with a range, and by charge.

Pure: usage matrices and billing values in, exact amounts out. Every scenario is priced by the
billing core itself (``rate_segments`` + ``draft_invoice``: the same tiers, TOU periods,
demand charges, proration, rounding and tax as the invoice), so a forecast differs from the
invoice only by the usage it assumes:

* ``to_date``: the usage so far and nothing more (the running charge);
* ``expected`` / ``low`` / ``high``: the usage so far plus each meter's pattern forecast
  (``collector.analytics.forecast``) and its range;
* ``linear``: Lago's projection, the usage so far divided by the elapsed share of the period
  (for comparison; see docs/analytics.md for how both fare on a backtest).

Amounts are ``Decimal`` in the invoice currency (total including tax), rounded as invoices are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from collector.analytics.forecast import ForecastConfig, UsageForecast, forecast_usage
from collector.analytics.model import BUCKET_S
from collector.billing.drafting import draft_invoice
from collector.billing.model import Customer
from collector.billing.periods import BillingPeriod
from collector.billing.rating_pass import rate_segments
from collector.billing.segments import Segment
from collector.rating import Plan
from collector.storage.billing_usage_store import UsageRows

__all__ = [
    "BillForecast",
    "ChargeAmount",
    "Priced",
    "forecast_bill",
    "price_scenarios",
    "price_usage",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ChargeAmount:
    """The exact (unrounded) amount of one charge of the plans, summed over the meters."""

    charge_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Priced:
    """One usage scenario priced as an invoice: rounded subtotal, tax, total, and by charge."""

    quantity: float
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    charges: tuple[ChargeAmount, ...]


def price_usage(
    customer: Customer,
    period: BillingPeriod,
    segments: Sequence[Segment],
    plans: Mapping[int, Plan],
    units: Mapping[int, str],
    *,
    rows: UsageRows,
) -> Priced:
    """``rows`` priced exactly as the period's invoice would be."""
    rated = rate_segments(segments, [period] * len(segments), rows, plans, units)
    facts = rated.facts
    labels = {s.series_id: str(s.series_id) for s in segments}
    draft = draft_invoice(
        customer,
        period,
        [(s, facts[s.index], rated.lines.get(s.index, [])) for s in segments],
        [],
        labels,
    )
    by_charge: dict[str, Decimal] = {}
    for items in rated.lines.values():
        for item in items:
            by_charge[item.charge_id] = by_charge.get(item.charge_id, Decimal(0)) + (
                item.amount_unrounded
            )
    zero = Decimal(0)
    return Priced(
        float(rows.quantity.sum()),
        draft.subtotal if draft else zero,
        draft.tax if draft else zero,
        draft.total if draft else zero,
        tuple(ChargeAmount(k, v) for k, v in sorted(by_charge.items())),
    )


# Series ids of scenario k are moved up by k * 2**26; billing packs (series, time) keys under
# 2**33, so shifted ids must stay below 2**30 (ids from 2**26 on are priced one by one).
_SCENARIO_SHIFT = 1 << 26


def price_scenarios(
    customer: Customer,
    period: BillingPeriod,
    segments: Sequence[Segment],
    plans: Mapping[int, Plan],
    units: Mapping[int, str],
    *,
    scenarios: Sequence[UsageRows],
) -> list[Priced]:
    """Each usage scenario priced as the invoice, all in ONE rating pass: scenario ``k``'s
    segments and rows get series ids shifted by ``k * 2**26``, so the engine builds its
    tables (TOU periods, tiers) once for all of them."""
    n = len(segments)
    if len(scenarios) > 8 or any(sg.series_id >= _SCENARIO_SHIFT for sg in segments):
        return [
            price_usage(customer, period, segments, plans, units, rows=r) for r in scenarios
        ]
    all_segments: list[Segment] = []
    all_units: dict[int, str] = {}
    parts: list[UsageRows] = []
    for k, rows in enumerate(scenarios):
        shift = k * _SCENARIO_SHIFT
        all_segments += [
            dataclasses.replace(s, index=k * n + s.index, series_id=s.series_id + shift)
            for s in segments
        ]
        all_units.update({sid + shift: u for sid, u in units.items()})
        parts.append(
            UsageRows(rows.series + shift, rows.bucket, rows.quantity, rows.estimated,
                      rows.readings)
        )
    merged = parts[0]
    for more in parts[1:]:
        merged = _concat(merged, more)
    rated = rate_segments(all_segments, [period] * len(all_segments), merged, plans, all_units)
    out: list[Priced] = []
    for k, rows in enumerate(scenarios):
        segs = all_segments[k * n : (k + 1) * n]
        labels = {s.series_id: str(s.series_id) for s in segs}
        draft = draft_invoice(
            customer, period,
            [(s, rated.facts[s.index], rated.lines.get(s.index, [])) for s in segs], [], labels,
        )
        by_charge: dict[str, Decimal] = {}
        for s in segs:
            for item in rated.lines.get(s.index, []):
                by_charge[item.charge_id] = by_charge.get(item.charge_id, Decimal(0)) + (
                    item.amount_unrounded
                )
        zero = Decimal(0)
        out.append(
            Priced(
                float(rows.quantity.sum()),
                draft.subtotal if draft else zero,
                draft.tax if draft else zero,
                draft.total if draft else zero,
                tuple(ChargeAmount(c, v) for c, v in sorted(by_charge.items())),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class BillForecast:
    """The current period's bill as of ``as_of``: running charge, forecast and range, linear
    projection; usage totals in the meters' unit."""

    period: str
    currency: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    to_date: Priced
    expected: Priced
    low: Priced
    high: Priced
    linear: Priced
    patterned: bool  # False when some meter had too little history (straight line used)
    history_days: float = 0.0  # days of usage behind the forecast (since the first meter's first)


def _rows(series_ids: I64, starts: I64, values: F64) -> UsageRows:
    n, t = values.shape
    z = np.zeros(n * t)
    return UsageRows(
        np.repeat(series_ids, t),
        np.tile(starts, n),
        values.reshape(-1).astype(np.float64),
        z,
        np.zeros(n * t, dtype=np.int64),
    )


def _concat(a: UsageRows, b: UsageRows) -> UsageRows:
    return UsageRows(
        np.r_[a.series, b.series],
        np.r_[a.bucket, b.bucket],
        np.r_[a.quantity, b.quantity],
        np.r_[a.estimated, b.estimated],
        np.r_[a.readings, b.readings],
    )


def _scaled(f: UsageForecast, target: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(f.remaining > 0, target / f.remaining, 0.0)
    out: F64 = f.expected * k[:, None]
    return out


def forecast_bill(
    customer: Customer,
    period: BillingPeriod,
    segments: Sequence[Segment],
    plans: Mapping[int, Plan],
    units: Mapping[int, str],
    *,
    series_ids: I64,
    history: F64,
    history_start: int,
    now: datetime,
    holidays: Collection[date] = (),
    config: ForecastConfig | None = None,
) -> BillForecast:
    """Forecast ``customer``'s bill for ``period`` at ``now`` from the history of its meters
    (``history[i]`` is the 15-minute usage of ``series_ids[i]`` from ``history_start`` to at
    least ``now``, period so far included)."""
    p0, p1 = int(period.start.timestamp()), int(period.end.timestamp())
    t = min(max(int(now.timestamp()) // BUCKET_S * BUCKET_S, p0 + BUCKET_S), p1)
    f = forecast_usage(
        history,
        history_start,
        period_start=p0,
        now=t,
        period_end=p1,
        tz=period.time_zone,
        holidays=holidays,
        config=config,
    )
    j0, j1 = (p0 - history_start) // BUCKET_S, (t - history_start) // BUCKET_S
    so_far = history[:, j0:j1]
    past_starts = history_start + BUCKET_S * np.arange(j0, j1, dtype=np.int64)
    observed = _rows(series_ids, past_starts, so_far)

    ratio = (t - p0) / (p1 - p0)
    to_date, expected, low, high, linear = price_scenarios(
        customer,
        period,
        segments,
        plans,
        units,
        scenarios=[
            observed,
            _concat(observed, _rows(series_ids, f.starts, f.expected)),
            _concat(observed, _rows(series_ids, f.starts, _scaled(f, f.remaining_low))),
            _concat(observed, _rows(series_ids, f.starts, _scaled(f, f.remaining_high))),
            _rows(series_ids, past_starts, so_far / ratio),
        ],
    )
    return BillForecast(
        period=str(period.key),
        currency=customer.spec.currency,
        period_start=period.start,
        period_end=period.end,
        as_of=datetime.fromtimestamp(t, UTC),
        to_date=to_date,
        expected=expected,
        low=low,
        high=high,
        linear=linear,
        patterned=bool(f.patterned.all()),
        history_days=float(f.history_days.max()) if f.history_days.size else 0.0,
    )
