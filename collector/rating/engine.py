"""The vectorised rating engine: many subscriptions, one plan, one call (pure, numpy).

Per meter, readings are quantised to micro-units and summed exactly per subscription (and per
TOU period via a precomputed period table); demand peaks are window maxima. Each charge then
turns those per-subscription totals into columnar lines (``charge_lines``). Only the lines are
ever Decimal, and only when ``RatedLines`` materialises them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from collector.errors import RatingError
from collector.rating import charge_lines as cl
from collector.rating.currencies import minor_unit_exponent
from collector.rating.inputs import IntervalUsage, Subscriptions
from collector.rating.intmath import narrow, scale_half_even
from collector.rating.lines import LineBlock, LineItem, LineKind, RatedLines
from collector.rating.meter_usage import MeterUsage, Windows, max_per
from collector.rating.money import QUANTITY_EXPONENT, quantize_quantity
from collector.rating.percentage import percentage as percentage_lines
from collector.rating.plan import (
    Demand,
    Discount,
    Graduated,
    MeteredCharge,
    MinimumCommitment,
    NetMetering,
    Package,
    Percentage,
    PerUnit,
    Plan,
    ProgressiveBilling,
    Recurring,
    Tax,
    TimeOfUse,
    UsageCharge,
    Volume,
    decimals,
)
from collector.rating.tou_table import PeriodTable, build_table
from collector.rating.units import conversion, power_conversion

I64 = npt.NDArray[np.int64]
DAY = 86_400
_TABLE_MARGIN = 3_600  # demand windows may start before the first reading
_INT64_QTY = 2**62


def rate(plan: Plan, subscriptions: Subscriptions, usage: Sequence[IntervalUsage]) -> RatedLines:
    """Rate every subscription of ``subscriptions`` on ``plan`` over its period.

    ``usage`` holds one :class:`IntervalUsage` per meter the plan's charges name (rows of
    every subscription mixed, any order). Rows outside their subscription's
    ``[period_start, period_end)`` are ignored. Returns columnar lines; use
    ``RatedLines.by_subscription()`` for ``LineItem``s in invoice order and
    ``RatedLines.peaks`` to store demand peaks for future ratchets.
    Raises ``RatingError`` for a missing meter, a unit that cannot convert, or bad input.
    """
    meters: dict[str, MeterUsage] = {}
    for u in usage:
        if u.meter in meters:
            raise RatingError(f"two usage arrays for meter {u.meter!r}")
        meters[u.meter] = MeterUsage(u, subscriptions)
    return _Rater(plan, subscriptions, meters).run()


def rate_grouped(
    plans: Sequence[Plan],
    plan_index: npt.NDArray[np.int32],
    subscriptions: Subscriptions,
    usage: Sequence[IntervalUsage],
) -> list[RatedLines]:
    """Rate subscriptions on several plans: subscription ``i`` uses ``plans[plan_index[i]]``.

    Subscriptions are grouped by plan and each group is rated in one :func:`rate` call; result
    ``k`` holds the lines of the subscriptions on ``plans[k]`` with their original indices.
    """
    n = subscriptions.count
    if plan_index.shape != (n,):
        raise RatingError("plan_index needs one entry per subscription")
    out: list[RatedLines] = []
    for k, plan in enumerate(plans):
        idx = np.flatnonzero(plan_index == k).astype(np.int32)
        local = np.full(n, -1, dtype=np.int32)
        local[idx] = np.arange(idx.size, dtype=np.int32)
        part = Subscriptions(
            period_start=subscriptions.period_start[idx],
            period_end=subscriptions.period_end[idx],
            cycle_start=None
            if subscriptions.cycle_start is None
            else subscriptions.cycle_start[idx],
            cycle_end=None if subscriptions.cycle_end is None else subscriptions.cycle_end[idx],
            previous_peaks={c: p[idx] for c, p in subscriptions.previous_peaks.items()},
            billed_in_advance=None
            if subscriptions.billed_in_advance is None
            else subscriptions.billed_in_advance[idx],
        )
        group_usage = []
        for u in usage:
            keep = local[u.subscription] >= 0
            group_usage.append(
                IntervalUsage(
                    unit=u.unit,
                    interval_seconds=u.interval_seconds,
                    meter=u.meter,
                    subscription=local[u.subscription[keep]],
                    start=u.start[keep],
                    quantity=u.quantity[keep],
                )
            )
        rated = rate(plan, part, group_usage)
        blocks = tuple(_remap(b, idx) for b in rated.blocks)
        peaks = {}
        for cid, p in rated.peaks.items():
            full = np.zeros(n, dtype=np.int64)
            full[idx] = p
            peaks[cid] = full
        out.append(RatedLines(plan, n, blocks, peaks))
    return out


def _remap(b: LineBlock, idx: npt.NDArray[np.int32]) -> LineBlock:
    return replace(b, subscription=idx[b.subscription])


def rate_quantity(
    plan: Plan, quantity: Decimal, *, unit: str | None = None, meter: str | None = None
) -> list[LineItem]:
    """Lines for one total ``quantity`` over one whole cycle (quotes, the calculator).

    Without ``unit`` the quantity is the billed quantity in each charge's own unit (no
    multiplier); with ``unit`` it is a meter quantity, converted and multiplied like readings.
    With ``meter`` only that meter's charges get the quantity (others get 0).
    Time-of-use and demand charges need interval usage: ``RatingError``.
    """
    for ch in plan.charges:
        if isinstance(ch, TimeOfUse | Demand | Percentage | NetMetering):
            raise RatingError(f"charge {ch.id!r} ({ch.type}) needs interval usage, not a quantity")
    q = quantize_quantity(quantity)
    if q < 0:
        raise RatingError("quantity must be non-negative")
    subs = Subscriptions(period_start=np.zeros(1, np.int64), period_end=np.full(1, DAY, np.int64))
    rater = _Rater(plan, subs, {})
    rater.fixed = (int(q.scaleb(QUANTITY_EXPONENT)), unit, meter)
    return rater.run().by_subscription()[0]


class _Rater:
    """One rating call: the plan, the subscriptions, prepared meters, and the blocks so far."""

    def __init__(self, plan: Plan, subs: Subscriptions, meters: Mapping[str, MeterUsage]) -> None:
        self.plan = plan
        self.subs = subs
        self.meters = meters
        self.n = subs.count
        self.exp = minor_unit_exponent(plan.currency)
        self.blocks: list[LineBlock] = []
        self.peaks: dict[str, I64] = {}
        self.fixed: tuple[int, str | None, str | None] | None = None
        self._table: PeriodTable | None = None

    def run(self) -> RatedLines:
        for pos, ch in enumerate(self.plan.charges):
            if not isinstance(ch, MinimumCommitment | Recurring | Discount | ProgressiveBilling):
                self._usage_charge(pos, ch)
        usage_minor = self._sum_minor(self.blocks)
        first_fee = len(self.blocks)
        for pos, ch in enumerate(self.plan.charges):
            if isinstance(ch, Recurring):
                self._recurring(pos, ch)
        with_fees = usage_minor + self._sum_minor(self.blocks[first_fee:])
        for pos, ch in enumerate(self.plan.charges):
            if isinstance(ch, MinimumCommitment):
                self._minimum(pos, ch, with_fees if ch.includes_recurring else usage_minor)
        undiscounted = list(self.blocks)
        for pos, ch in enumerate(self.plan.charges):
            if isinstance(ch, Discount):
                self._discount(pos, ch, undiscounted)
        for pos, ch in enumerate(self.plan.charges):
            if isinstance(ch, ProgressiveBilling):
                self._billed_in_advance(pos, ch)
        return RatedLines(self.plan, self.n, tuple(self.blocks), self.peaks)

    def _sum_minor(self, blocks: Sequence[LineBlock]) -> I64:
        """Rounded amounts (minor units, any sign) summed per subscription, exactly."""
        out = np.zeros(self.n, dtype=np.int64)
        for b in blocks:
            minor = np.asarray(b.amount_minor, dtype=np.int64)
            if minor.size and int(np.abs(minor).max()) * minor.size < 2**53:
                out += np.bincount(b.subscription, minor.astype(np.float64), self.n).astype(
                    np.int64
                )
            else:
                np.add.at(out, b.subscription, minor)
        return out

    # -- quantities ------------------------------------------------------------------------

    def _meter(self, ch: MeteredCharge) -> MeterUsage:
        try:
            return self.meters[ch.meter]
        except KeyError:
            raise RatingError(f"charge {ch.id!r} needs usage of meter {ch.meter!r}") from None

    def _negative(self, pos: int, ch: MeteredCharge) -> None:
        """Reject negative readings, or show their total on a ``negative`` line (price 0)."""
        if self.fixed is not None:
            return
        self._negative_of(pos, ch, self._meter(ch))
        if isinstance(ch, NetMetering):
            self._negative_of(pos, ch, self._meter_named(ch, ch.export_meter))

    def _meter_named(self, ch: MeteredCharge, name: str) -> MeterUsage:
        try:
            return self.meters[name]
        except KeyError:
            raise RatingError(f"charge {ch.id!r} needs usage of meter {name!r}") from None

    def _negative_of(self, pos: int, ch: MeteredCharge, m: MeterUsage) -> None:
        if m.negative is None:
            return
        if ch.negative_usage == "reject":
            raise RatingError(
                f"charge {ch.id!r}: meter {m.meter!r} has {m.negative_count} negative "
                "reading(s) in the period; set negative_usage: flag to bill without them"
            )
        mask = m.negative > 0
        subs = np.flatnonzero(mask).astype(np.int32)
        info = cl.ChargeInfo(ch.id, pos, ch.description, m.unit, 0, self.exp)
        rows = cl.Rows(subs, np.full(subs.size, -1, np.int16), -m.negative[mask])
        self.blocks.append(cl.block(info, LineKind.NEGATIVE, rows, np.zeros(subs.size, np.int64)))

    def _factor(self, from_unit: str, ch: UsageCharge) -> Fraction:
        try:
            return conversion(from_unit, ch.unit) * Fraction(ch.multiplier)
        except ValueError as exc:
            raise RatingError(f"charge {ch.id!r}: {exc}") from exc

    def _billed(
        self, micro: I64, factor: Fraction, ch: UsageCharge, m: MeterUsage | None = None
    ) -> I64:
        """Micro-unit totals (one per subscription) × factor [× the subscription's meter
        multiplier], rounded half to even to micro billing units."""
        if m is None or m.multiplier_index is None:
            out = narrow(scale_half_even(micro, factor))
        else:
            parts = np.zeros(micro.shape, dtype=object)
            for j, mult in enumerate(m.multiplier_values):
                mask = m.multiplier_index == j
                parts[mask] = scale_half_even(micro[mask], factor * mult).astype(object)
            out = narrow(parts)
        if out.dtype == object or (out.size and int(out.max()) >= _INT64_QTY):
            raise RatingError(f"charge {ch.id!r}: quantity too large")
        return out.astype(np.int64)

    def _totals(self, ch: UsageCharge) -> I64:
        if self.fixed is not None:
            q, unit, meter = self.fixed
            totals = np.full(self.n, q if meter in (None, ch.meter) else 0, dtype=np.int64)
            totals = _rounded(totals, ch, "before_conversion")
            if unit is None:
                return _rounded(totals, ch, "after_conversion")
            return _rounded(
                self._billed(totals, self._factor(unit, ch), ch), ch, "after_conversion"
            )
        m = self._meter(ch)
        meter_totals = _rounded(m.totals(), ch, "before_conversion")
        return _rounded(
            self._billed(meter_totals, self._factor(m.unit, ch), ch, m), ch, "after_conversion"
        )

    def _period_table(self, m: MeterUsage) -> PeriodTable | None:
        rng = m.time_range()
        if rng is None:
            return None
        if (
            self._table is None
            or self._table.t0 > rng[0] - _TABLE_MARGIN
            or (self._table.t0 + self._table.step * self._table.table.size <= rng[1])
        ):
            self._table = build_table(self.plan, rng[0] - _TABLE_MARGIN, rng[1])
        return self._table

    # -- charges ---------------------------------------------------------------------------

    def _info(
        self,
        pos: int,
        ch: UsageCharge | MinimumCommitment | Recurring,
        prices: Sequence[Decimal],
        unit: str,
    ) -> cl.ChargeInfo:
        return cl.ChargeInfo(ch.id, pos, ch.description, unit, cl.price_scale(prices), self.exp)

    def _all_rows(self, qty: I64) -> cl.Rows:
        return cl.Rows(np.arange(self.n, dtype=np.int32), np.full(self.n, -1, np.int16), qty)

    def _usage_charge(self, pos: int, ch: MeteredCharge) -> None:
        first = len(self.blocks)
        self._negative(pos, ch)
        if isinstance(ch, TimeOfUse):
            self._time_of_use(pos, ch)
        elif isinstance(ch, Demand):
            self._demand(pos, ch)
        elif isinstance(ch, Percentage):
            self._percentage(pos, ch)
        elif isinstance(ch, NetMetering):
            self._net_metering(pos, ch)
        else:
            self._total_charge(pos, ch)
        if ch.maximum is not None:
            self._cap(pos, ch, ch.maximum, self.blocks[first:])
        if ch.taxes:
            base = self._sum_minor(self.blocks[first:])
            for tax in ch.taxes:
                self._tax(pos, ch, tax, base)

    def _tax(self, pos: int, ch: MeteredCharge, tax: Tax, base: I64) -> None:
        """``percent`` of the charge's rounded amount, rounded half away from zero."""
        dec = decimals(tax.percent)
        info = cl.ChargeInfo(
            ch.id, pos, f"{ch.description or ch.id} {tax.id}", self.plan.currency, dec + 2, self.exp
        )
        subs = np.arange(self.n, dtype=np.int32)
        qty = base * 10 ** (QUANTITY_EXPONENT - self.exp)
        price = np.full(self.n, cl.scaled(tax.percent, dec), dtype=np.int64)
        b = cl.block(
            info, LineKind.TAX, cl.Rows(subs, np.full(self.n, -1, np.int16), np.abs(qty)), price
        )
        sign = np.sign(qty)
        self.blocks.append(
            replace(
                b,
                quantity=qty,
                amount=sign * b.amount,
                amount_minor=sign * b.amount_minor,
            )
        )

    def _cap(self, pos: int, ch: MeteredCharge, cap: Decimal, blocks: Sequence[LineBlock]) -> None:
        """A ``cap`` line taking the charge's rounded total down to its spend cap."""
        over = self._sum_minor(blocks) - int(cap.scaleb(self.exp))
        mask = over > 0
        if mask.any():
            info = cl.ChargeInfo(ch.id, pos, ch.description, "", self.exp, self.exp)
            subs = np.flatnonzero(mask).astype(np.int32)
            rows = cl.Rows(
                subs,
                np.full(subs.size, -1, np.int16),
                np.full(subs.size, 10**QUANTITY_EXPONENT, np.int64),
            )
            self.blocks.append(cl.block(info, LineKind.CAP, rows, -over[mask]))

    def _total_charge(self, pos: int, ch: PerUnit | Graduated | Volume | Package) -> None:
        rows = self._all_rows(self._totals(ch))
        if isinstance(ch, PerUnit):
            info = self._info(pos, ch, [ch.price], ch.unit)
            rows, free = cl.included(info, rows, ch.included)
            rows = _rounded_rows(rows, ch)
            self.blocks += [*free, *cl.per_unit(info, rows, ch.price)]
        elif isinstance(ch, Graduated | Volume):
            info = self._info(
                pos, ch, [p for t in ch.tiers for p in (t.price, t.flat_fee)], ch.unit
            )
            rows, free = cl.included(info, rows, ch.included)
            rows = _rounded_rows(rows, ch)
            if isinstance(ch, Graduated):
                tiered = cl.graduated(info, rows, ch.tiers, fee_at_zero=ch.flat_fee_at_zero)
            else:
                tiered = cl.volume(
                    info,
                    rows,
                    ch.tiers,
                    inclusive=ch.bounds == "inclusive",
                    fee_at_zero=ch.flat_fee_at_zero,
                )
            self.blocks += [*free, *tiered]
        elif isinstance(ch, Package):
            info = self._info(pos, ch, [ch.price], ch.unit)
            rows, free = cl.included(info, rows, ch.included)
            rows = _rounded_rows(rows, ch)
            self.blocks += [*free, *cl.package(info, rows, ch.size, ch.price)]

    def _net_metering(self, pos: int, ch: NetMetering) -> None:
        """Import billed and export credited per TOU period (or flat), gross or net."""
        if self.fixed is not None:
            raise RatingError(f"charge {ch.id!r} (net_metering) needs interval usage")
        imp, exp = self._meter(ch), self._meter_named(ch, ch.export_meter)
        names = self.plan.energy_period_names() if ch.period_names() else ()
        if names:
            t_imp = self._period_table(imp)
            ti = imp.period_totals(t_imp, len(names)) if t_imp is not None else None
            t_exp = self._period_table(exp)
            te = exp.period_totals(t_exp, len(names)) if t_exp is not None else None
        else:
            ti, te = imp.totals()[:, None], exp.totals()[:, None]
        shape = (self.n, max(len(names), 1))
        ti = np.zeros(shape, np.int64) if ti is None else ti
        te = np.zeros(shape, np.int64) if te is None else te
        imp_p, exp_p = ch.import_price, ch.export_price
        prices = [*(imp_p.values() if isinstance(imp_p, dict) else [imp_p])]
        prices += [*(exp_p.values() if isinstance(exp_p, dict) else [exp_p])]
        info = self._info(pos, ch, prices, ch.unit)
        subs = np.arange(self.n, dtype=np.int32)
        for col in range(shape[1]):
            name = names[col] if names else None
            ip = imp_p[name] if isinstance(imp_p, dict) and name else imp_p
            ep = exp_p[name] if isinstance(exp_p, dict) and name else exp_p
            assert isinstance(ip, Decimal)
            assert isinstance(ep, Decimal)
            period = np.full(self.n, col if names else -1, np.int16)
            qi = self._billed(ti[:, col], self._factor(imp.unit, ch), ch, imp)
            qe = self._billed(te[:, col], self._factor(exp.unit, ch), ch, exp)
            if ch.mode == "net":
                billed, credited = np.maximum(qi - qe, 0), np.maximum(qe - qi, 0)
            else:
                billed, credited = qi, qe
            self.blocks += cl.per_unit(info, cl.Rows(subs, period, billed), ip)
            credit = cl.block(
                info,
                LineKind.EXPORT_CREDIT,
                cl.Rows(subs, period, credited),
                np.full(self.n, cl.scaled(ep, info.price_scale), np.int64),
            )
            self.blocks.append(
                replace(
                    credit,
                    unit_price=-credit.unit_price,
                    amount=-credit.amount,
                    amount_minor=-credit.amount_minor,
                )
            )
            if ch.mode == "net":
                netted = np.minimum(qi, qe)
                hit = netted > 0
                rows = cl.Rows(subs[hit], period[hit], netted[hit])
                zero = np.zeros(int(hit.sum()), np.int64)
                self.blocks.append(cl.block(info, LineKind.NETTED, rows, zero))

    def _percentage(self, pos: int, ch: Percentage) -> None:
        if self.fixed is not None:
            raise RatingError(f"charge {ch.id!r} (percentage) needs transactions, not a quantity")
        m = self._meter(ch)
        if m.unit != "amount":
            raise RatingError(
                f"charge {ch.id!r}: percentage needs a meter in 'amount', not {m.unit}"
            )
        info = cl.ChargeInfo(ch.id, pos, ch.description, self.plan.currency, 0, self.exp)
        self.blocks += percentage_lines(info, ch, m, self.n)

    def _time_of_use(self, pos: int, ch: TimeOfUse) -> None:
        names = self.plan.energy_period_names()
        m = self._meter(ch)
        table = self._period_table(m)
        totals = (
            m.period_totals(table, len(names))
            if table is not None
            else np.zeros((self.n, len(names)), dtype=np.int64)
        )
        factor = self._factor(m.unit, ch)
        prices = [
            p
            for pp in ch.periods.values()
            for p in (
                [pp.price]
                if pp.price is not None
                else [x for t in pp.tiers or () for x in (t.price, t.flat_fee)]
            )
        ]
        info = self._info(pos, ch, prices, ch.unit)
        subs = np.arange(self.n, dtype=np.int32)
        per_period = []
        for p in range(len(names)):
            billed = self._billed(_rounded(totals[:, p], ch, "before_conversion"), factor, ch, m)
            per_period.append(
                _rounded(_rounded(billed, ch, "after_conversion"), ch, "after_allowance")
            )
        if ch.tier_basis == "month_total":
            self.blocks += _month_total_tiers(info, ch, names, per_period)
            return
        for p, name in enumerate(names):
            price = ch.periods[name]
            billed = per_period[p]
            rows = cl.Rows(subs, np.full(self.n, p, np.int16), billed)
            if price.price is not None:
                self.blocks += cl.per_unit(info, rows, price.price)
            else:
                assert price.tiers is not None
                self.blocks += cl.graduated(
                    info, rows, price.tiers, fee_at_zero=price.flat_fee_at_zero
                )

    def _demand(self, pos: int, ch: Demand) -> None:
        m = self._meter(ch)
        window = ch.window_minutes * 60
        try:
            factor = (
                power_conversion(m.unit, ch.unit) * Fraction(ch.multiplier) * Fraction(3600, window)
            )
        except ValueError as exc:
            raise RatingError(f"charge {ch.id!r}: {exc}") from exc
        w = m.windows(window) if ch.window_type == "fixed" else m.rolling_windows(window)
        prices = [*([ch.price] if ch.price is not None else []), *ch.period_prices.values()]
        info = self._info(pos, ch, prices, ch.unit)
        subs = np.arange(self.n, dtype=np.int32)
        if ch.price is not None:
            peak = self._billed(max_per(w.subscription, w.energy, self.n), factor, ch, m)
            self.peaks[ch.id] = peak
            billed, ratcheted = peak, np.zeros(self.n, dtype=bool)
            if ch.ratchet is not None:
                floor = self._ratchet_floor(ch)
                ratcheted = floor > peak
                billed = np.maximum(peak, floor)
            if ch.minimum:  # the minimum chargeable demand, after the ratchet
                billed = np.maximum(billed, cl.micro(ch.minimum))
            rows = cl.Rows(subs, np.full(self.n, -1, np.int16), billed)
            for kind, mask in ((LineKind.DEMAND, ~ratcheted), (LineKind.RATCHET, ratcheted)):
                if mask.any():
                    self._demand_block(info, kind, rows.take(mask), ch, ch.price)
        if ch.period_prices:
            self._demand_periods(info, ch, m, w, factor)

    def _demand_periods(
        self, info: cl.ChargeInfo, ch: Demand, m: MeterUsage, w: Windows, factor: Fraction
    ) -> None:
        """The highest window starting in each TOU period (plan schedule or the demand's own)."""
        subs = np.arange(self.n, dtype=np.int32)
        if ch.schedule is None:
            names = self.plan.energy_period_names()
            table = self._period_table(m)
            of = m.periods_of(w.start, table) if table is not None else None
        else:  # the demand's own schedule: its own table, its names placed globally
            own = self.plan.model_copy(update={"schedule": ch.schedule})
            names = ch.schedule.period_names()
            rng = m.time_range()
            of = None
            if rng is not None and w.start.size:
                lo = min(rng[0], int(w.start.min())) - _TABLE_MARGIN
                of = build_table(own, lo, rng[1]).lookup(w.start)
        global_index = {n: i for i, n in enumerate(self.plan.period_names())}
        p_count = len(names)
        if of is None:
            peaks = np.zeros((self.n, p_count), dtype=np.int64)
        else:
            key = w.subscription.astype(np.int64) * p_count + of
            peaks = max_per(key, w.energy, self.n * p_count).reshape(self.n, p_count)
        for p, name in enumerate(names):
            if name in ch.period_prices:
                where = np.full(self.n, global_index[name], np.int16)
                rows = cl.Rows(subs, where, self._billed(peaks[:, p], factor, ch, m))
                self._demand_block(info, LineKind.DEMAND, rows, ch, ch.period_prices[name])

    def _demand_block(
        self, info: cl.ChargeInfo, kind: LineKind, rows: cl.Rows, ch: Demand, price: Decimal
    ) -> None:
        """Demand × price, × billed days (``price_per: day``) or × active / cycle days
        (``prorate``); a prorated amount is exact (a denominator) and rounded once."""
        per = cl.scaled(price, info.price_scale)
        if ch.price_per == "period" and not ch.prorate:
            self.blocks.append(cl.block(info, kind, rows, np.full(len(rows.subscription), per)))
            return
        active, cycle = self._days(ch.prorate)
        num, den = active[rows.subscription], cycle[rows.subscription]
        unit_price = num * per
        if ch.price_per == "day":
            self.blocks.append(cl.block(info, kind, rows, unit_price))
            return
        b = cl.block(info, kind, rows, unit_price)
        step = den.astype(object) * 10 ** (b.amount_scale - self.exp)
        minor = (2 * np.asarray(b.amount, dtype=object) + step) // (2 * step)
        self.blocks.append(replace(b, amount_minor=narrow(minor), price_den=den, amount_den=den))

    def _ratchet_floor(self, ch: Demand) -> I64:
        assert ch.ratchet is not None
        prev = self.subs.previous_peaks.get(ch.id)
        if prev is None or prev.shape[1] == 0:
            return np.zeros(self.n, dtype=np.int64)
        recent = prev[:, -ch.ratchet.months :]
        filled = np.where(np.isnan(recent), 0.0, recent)
        if filled.size and (not np.isfinite(filled).all() or filled.min() < 0):
            raise RatingError(f"previous_peaks[{ch.id!r}] must be finite and non-negative")
        top = np.rint(filled * 1e6).astype(np.int64).max(axis=1)
        return narrow(scale_half_even(top, Fraction(ch.ratchet.percent) / 100)).astype(np.int64)

    def _discount(self, pos: int, ch: Discount, blocks: Sequence[LineBlock]) -> None:
        """A negative ``discount`` line on the targeted lines of subscriptions whose period
        starts inside the coupon's validity."""
        targets = set(ch.applies_to)
        base = self._sum_minor([b for b in blocks if not targets or b.charge_id in targets])
        lo, hi = discount_window(self.plan, ch)
        start = self.subs.period_start
        mask = (base > 0) & (start >= lo) & (start < hi)
        if not mask.any():
            return
        subs = np.flatnonzero(mask).astype(np.int32)
        none = np.full(subs.size, -1, np.int16)
        if ch.percent is not None:
            dec = decimals(ch.percent)
            info = cl.ChargeInfo(ch.id, pos, ch.description, self.plan.currency, dec + 2, self.exp)
            qty = base[mask] * 10 ** (QUANTITY_EXPONENT - self.exp)
            price = np.full(subs.size, cl.scaled(ch.percent, dec), dtype=np.int64)
        else:
            assert ch.amount is not None
            info = cl.ChargeInfo(ch.id, pos, ch.description, "", self.exp, self.exp)
            qty = np.full(subs.size, 10**QUANTITY_EXPONENT, dtype=np.int64)
            price = np.minimum(base[mask], int(ch.amount.scaleb(self.exp)))
        b = cl.block(info, LineKind.DISCOUNT, cl.Rows(subs, none, qty), price)
        self.blocks.append(
            replace(b, unit_price=-b.unit_price, amount=-b.amount, amount_minor=-b.amount_minor)
        )

    def _billed_in_advance(self, pos: int, ch: ProgressiveBilling) -> None:
        """Deduct what interim invoices of the period billed (a negative line)."""
        billed = self.subs.billed_in_advance
        if billed is None or not (billed > 0).any():
            return
        mask = billed > 0
        subs = np.flatnonzero(mask).astype(np.int32)
        info = cl.ChargeInfo(ch.id, pos, ch.description, "", self.exp, self.exp)
        rows = cl.Rows(
            subs,
            np.full(subs.size, -1, np.int16),
            np.full(subs.size, 10**QUANTITY_EXPONENT, np.int64),
        )
        self.blocks.append(cl.block(info, LineKind.BILLED_IN_ADVANCE, rows, -billed[mask]))

    def _days(self, prorate: bool) -> tuple[I64, I64]:
        """Active and cycle days per subscription; equal when not prorated (or no cycle)."""
        s = self.subs
        active = (s.period_end - s.period_start + DAY // 2) // DAY
        if s.cycle_start is not None and s.cycle_end is not None and prorate:
            cycle = np.maximum((s.cycle_end - s.cycle_start + DAY // 2) // DAY, 1)
            return np.minimum(active, cycle), cycle
        active = np.maximum(active, 1)
        return active, active

    def _minimum(self, pos: int, ch: MinimumCommitment, usage_minor: I64) -> None:
        info = cl.ChargeInfo(ch.id, pos, ch.description, "", self.exp, self.exp)
        committed = int(ch.amount.scaleb(self.exp))
        if ch.prorate:  # the prorated commitment, rounded half up to the minor unit first
            active, cycle = self._days(True)
            commitment = (2 * active * committed + cycle) // (2 * cycle)
        else:
            commitment = np.full(self.n, committed, dtype=np.int64)
        gap = commitment - usage_minor
        mask = gap > 0
        if mask.any():
            subs = np.flatnonzero(mask).astype(np.int32)
            rows = cl.Rows(
                subs,
                np.full(subs.size, -1, np.int16),
                np.full(subs.size, 10**QUANTITY_EXPONENT, np.int64),
            )
            self.blocks.append(cl.block(info, LineKind.MINIMUM, rows, gap[mask]))

    def _recurring(self, pos: int, ch: Recurring) -> None:
        active, cycle = self._days(ch.prorate)
        fee = int(ch.amount.scaleb(self.exp))
        num = active * fee
        minor = (2 * num + cycle) // (2 * cycle)
        self.blocks.append(
            LineBlock(
                charge_id=ch.id,
                charge_pos=pos,
                kind=LineKind.RECURRING,
                unit="day",
                description=ch.description,
                subscription=np.arange(self.n, dtype=np.int32),
                tier=np.full(self.n, -1, np.int16),
                period=np.full(self.n, -1, np.int16),
                quantity=active * 10**QUANTITY_EXPONENT,
                unit_price=np.full(self.n, fee, np.int64),
                price_scale=self.exp,
                amount=num,
                amount_scale=self.exp,
                amount_minor=minor,
                price_den=cycle,
                amount_den=cycle,
            )
        )


def _rounded(q: I64, ch: UsageCharge, step: str) -> I64:
    """``q`` rounded by the charge's quantity rounding if it applies at ``step``."""
    r = ch.rounding
    if r is None or r.step != step:
        return q
    return cl.round_quantity(q, r.mode, r.precision)


def _rounded_rows(rows: cl.Rows, ch: UsageCharge) -> cl.Rows:
    q = _rounded(np.asarray(rows.quantity, dtype=np.int64), ch, "after_allowance")
    return cl.Rows(rows.subscription, rows.period, q)


def discount_window(plan: Plan, ch: Discount) -> tuple[int, int]:
    """The coupon's validity ``[from, until)`` in Unix seconds (local midnights of the plan)."""
    zone = ZoneInfo(plan.time_zone)

    def at(d: date | None, default: int) -> int:
        return default if d is None else int(datetime.combine(d, time(0), zone).timestamp())

    return at(ch.valid_from, -(2**62)), at(ch.valid_until, 2**62)


def _month_total_tiers(
    info: cl.ChargeInfo, ch: TimeOfUse, names: Sequence[str], per_period: Sequence[I64]
) -> list[LineBlock]:
    """OpenEI URDB / NREL SAM tiers: the tiers split the total of all periods; each tier's
    units go to the periods pro rata to their usage (rounded half to even to micro-units),
    at the period's rate for that tier. Tier 1 always has a line per period; a higher tier
    only once the total reaches it."""
    q = np.stack(per_period, axis=1).astype(object)  # (n, periods), exact Python ints
    total = q.sum(axis=1)
    n = q.shape[0]
    first = ch.periods[names[0]].tiers
    assert first is not None
    out: list[LineBlock] = []
    for t, tier in enumerate(first):
        lo = cl.micro(tier.from_)
        units = np.maximum(total - lo, 0)
        if tier.to is not None:
            units = np.minimum(units, cl.micro(tier.to) - lo)
        reached = np.ones(n, dtype=bool) if t == 0 else (total > lo).astype(bool)
        for p, name in enumerate(names):
            tiers = ch.periods[name].tiers
            assert tiers is not None
            den = np.where(total > 0, total, 1)
            num = units * q[:, p]
            whole, rest = num // den, num % den
            up = (2 * rest > den) | ((2 * rest == den) & (whole % 2 == 1))
            alloc = narrow((whole + up.astype(object)).astype(object))
            rows = cl.Rows(
                np.flatnonzero(reached).astype(np.int32),
                np.full(int(reached.sum()), p, np.int16),
                np.asarray(alloc, dtype=np.int64)[reached],
            )
            price = np.full(rows.subscription.shape[0], cl.scaled(tiers[t].price, info.price_scale))
            tier_no = np.full(rows.subscription.shape[0], t, np.int16)
            out.append(cl.block(info, LineKind.TIER, rows, price, tier=tier_no))
    return out
