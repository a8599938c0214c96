"""Reference rating: the engine's semantics written for obviousness, one subscription at a time.

Plain Python loops over readings with ``Decimal``/``Fraction``; no numpy. It shares only the
plan model (and the output ``LineItem`` type) with the engine, and exists so that tests and the
benchmark can check the engine line by line. Slow on purpose: never use it for billing runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from zoneinfo import ZoneInfo

from collector.errors import RatingError
from collector.rating.currencies import minor_unit_exponent
from collector.rating.lines import LineItem, LineKind
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
    Tier,
    TimeOfUse,
    Volume,
)
from collector.rating.schedule import Schedule
from collector.rating.units import UNITS

MICRO = 1_000_000
DAY = 86_400


@dataclass(frozen=True)
class MeterReadings:
    """Readings of one meter for one subscription: ``(interval start, quantity)`` pairs."""

    unit: str
    interval_seconds: int
    readings: Sequence[tuple[int, float]]
    multiplier: Decimal = Decimal(1)  # this installation's meter multiplier (CT ratio)


@dataclass(frozen=True)
class Period:
    """The service period ``[start, end)`` and optionally its whole billing cycle."""

    start: int
    end: int
    cycle_start: int | None = None
    cycle_end: int | None = None
    previous_peaks: Mapping[str, Sequence[float]] = field(default_factory=dict)
    billed_in_advance: Decimal = Decimal(0)  # billed on interim invoices of this period


def _to_micro(value: float) -> int:
    """A float reading as integer micro-units, rounding half to even (Python's round)."""
    return round(value * 1e6)


def _round_quantity(value: Fraction) -> Decimal:
    """An exact quantity rounded half to even to 6 decimals."""
    scaled = value * MICRO
    whole = round(scaled)  # Fraction.__round__ rounds half to even
    return Decimal(whole) / MICRO


_ROUNDING = {"ceil": ROUND_CEILING, "floor": ROUND_FLOOR, "round": ROUND_HALF_UP}


def _rounding(
    ch: PerUnit | Graduated | Volume | Package | TimeOfUse, step: str, q: Decimal
) -> Decimal:
    """``q`` rounded by the charge's quantity rounding when it applies at ``step``."""
    r = ch.rounding
    if r is None or r.step != step:
        return q
    return q.quantize(Decimal(1).scaleb(-r.precision), rounding=_ROUNDING[r.mode])


def _started(units: Decimal, size: Decimal) -> Decimal:
    """Started blocks of ``size`` in ``units``."""
    whole, rest = divmod(units, size)
    return whole + (1 if rest else 0)


def _factor(from_unit: str, to_unit: str) -> Fraction:
    a, b = UNITS[from_unit], UNITS[to_unit]
    if a.dimension != b.dimension:
        raise RatingError(f"cannot convert {from_unit} to {to_unit}")
    return Fraction(a.factor) / Fraction(b.factor)


class _Subscription:
    def __init__(
        self, plan: Plan, index: int, period: Period, usage: Mapping[str, MeterReadings]
    ) -> None:
        self.plan = plan
        self.index = index
        self.period = period
        self.usage = usage
        self.minor = minor_unit_exponent(plan.currency)
        self.lines: list[LineItem] = []
        self.zone = ZoneInfo(plan.time_zone)
        self.holidays = set(plan.holidays)

    def readings(self, meter: str) -> tuple[MeterReadings, list[tuple[int, int]]]:
        """The meter's non-negative readings inside the period, in micro-units."""
        m, inside = self.all_readings(meter)
        return m, [(t, micro) for t, micro in inside if micro >= 0]

    def all_readings(self, meter: str) -> tuple[MeterReadings, list[tuple[int, int]]]:
        if meter not in self.usage:
            raise RatingError(f"no usage for meter {meter!r}")
        m = self.usage[meter]
        inside = [
            (t, _to_micro(q)) for t, q in m.readings if self.period.start <= t < self.period.end
        ]
        return m, inside

    def negative(self, ch: MeteredCharge) -> None:
        """Negative readings are never clamped silently: reject them, or flag them on a line."""
        self.negative_of(ch, ch.meter)
        if isinstance(ch, NetMetering):
            self.negative_of(ch, ch.export_meter)

    def negative_of(self, ch: MeteredCharge, meter: str) -> None:
        m, inside = self.all_readings(meter)
        below = [micro for _, micro in inside if micro < 0]
        if not below:
            return
        if ch.negative_usage == "reject":
            raise RatingError(f"charge {ch.id!r}: {len(below)} negative reading(s)")
        self.add(ch.id, LineKind.NEGATIVE, Decimal(sum(below)) / MICRO, m.unit, Decimal(0))

    def period_of(self, start: int, schedule: Schedule | None = None) -> str:
        own = schedule or self.plan.schedule
        assert own is not None
        local = datetime.fromtimestamp(start, self.zone)
        weekday, weekend = own.matrices()
        is_weekend = local.weekday() >= 5 or local.date() in self.holidays
        matrix = weekend if is_weekend else weekday
        return matrix[local.month - 1][local.hour]

    def add(
        self,
        charge_id: str,
        kind: LineKind,
        quantity: Decimal,
        unit: str,
        price: Decimal,
        *,
        tier: int | None = None,
        period: str | None = None,
        exact: Decimal | None = None,
        rounded: Decimal | None = None,
    ) -> None:
        with localcontext() as ctx:
            ctx.prec = 80
            amount = quantity * price if exact is None else exact
            if rounded is None:
                rounded = amount.quantize(Decimal(1).scaleb(-self.minor), rounding=ROUND_HALF_UP)
        text = f"{charge_id} {kind.value} {period or ''} {'' if tier is None else tier + 1}"
        self.lines.append(
            LineItem(
                self.index,
                charge_id,
                kind,
                text.strip(),
                quantity,
                unit,
                price,
                amount,
                rounded,
                self.plan.currency,
                tier,
                period,
            )
        )

    # ---- models -----------------------------------------------------------------------------

    def graduated(
        self,
        cid: str,
        unit: str,
        q: Decimal,
        tiers: Sequence[Tier],
        period: str | None = None,
        *,
        fee_at_zero: bool = True,
    ) -> None:
        for i, t in enumerate(tiers):
            reached = q > t.from_
            if i == 0 or reached:
                top = q if t.to is None else min(q, t.to)
                units = max(top - t.from_, Decimal(0))
                if t.block is not None:  # started blocks inside the tier
                    self.add(
                        cid,
                        LineKind.TIER,
                        _started(units, t.block),
                        f"block of {t.block} {unit}",
                        t.price,
                        tier=i,
                        period=period,
                    )
                else:
                    self.add(cid, LineKind.TIER, units, unit, t.price, tier=i, period=period)
            if (reached or (i == 0 and fee_at_zero)) and t.flat_fee > 0:
                self.add(cid, LineKind.FLAT_FEE, Decimal(1), "", t.flat_fee, tier=i, period=period)

    def volume(self, cid: str, unit: str, q: Decimal, ch: Volume) -> None:
        for i, t in enumerate(ch.tiers):
            if ch.bounds == "inclusive":
                inside = (t.from_ < q or i == 0) and (t.to is None or q <= t.to)
            else:
                inside = t.from_ <= q and (t.to is None or q < t.to)
            if not inside:
                continue
            if t.block is not None:  # every unit in started blocks of this tier
                blocks = _started(q, t.block)
                self.add(cid, LineKind.USAGE, blocks, f"block of {t.block} {unit}", t.price, tier=i)
            else:
                self.add(cid, LineKind.USAGE, q, unit, t.price, tier=i)
            if (q > 0 or ch.flat_fee_at_zero) and t.flat_fee > 0:
                self.add(cid, LineKind.FLAT_FEE, Decimal(1), "", t.flat_fee, tier=i)

    def chargeable(self, ch: PerUnit | Graduated | Volume | Package) -> Decimal:
        q = self.total(ch)
        if ch.included != 0:
            covered = min(q, ch.included)
            self.add(ch.id, LineKind.INCLUDED, covered, ch.unit, Decimal(0))
            q -= covered
        return _rounding(ch, "after_allowance", q)

    def cap(self, ch: MeteredCharge) -> None:
        """Take the charge's rounded lines down to its spend cap with a ``cap`` line."""
        if ch.maximum is None:
            return
        total = sum((li.amount for li in self.lines if li.charge_id == ch.id), Decimal(0))
        if total > ch.maximum:
            self.add(ch.id, LineKind.CAP, Decimal(1), "", ch.maximum - total)

    def total(self, ch: PerUnit | Graduated | Volume | Package | TimeOfUse) -> Decimal:
        m, rows = self.readings(ch.meter)
        return self.billed(ch, m, sum(micro for _, micro in rows))

    def billed(
        self, ch: PerUnit | Graduated | Volume | Package | TimeOfUse, m: MeterReadings, micro: int
    ) -> Decimal:
        """A meter total (micro-units) as the billed quantity, with the charge's rounding."""
        meter_total = _rounding(ch, "before_conversion", Decimal(micro) / MICRO)
        q = _round_quantity(
            Fraction(meter_total)
            * _factor(m.unit, ch.unit)
            * Fraction(ch.multiplier)
            * Fraction(m.multiplier)
        )
        return _rounding(ch, "after_conversion", q)

    def time_of_use(self, ch: TimeOfUse) -> None:
        m, rows = self.readings(ch.meter)
        if ch.tier_basis == "month_total":
            self.month_total_tiers(ch, m, rows)
            return
        for name in self.plan.energy_period_names():
            total = sum(micro for t, micro in rows if self.period_of(t) == name)
            q = _rounding(ch, "after_allowance", self.billed(ch, m, total))
            price = ch.periods[name]
            if price.price is not None:
                self.add(ch.id, LineKind.USAGE, q, ch.unit, price.price, period=name)
            else:
                assert price.tiers is not None
                self.graduated(
                    ch.id, ch.unit, q, price.tiers, period=name, fee_at_zero=price.flat_fee_at_zero
                )

    def month_total_tiers(
        self, ch: TimeOfUse, m: MeterReadings, rows: Sequence[tuple[int, int]]
    ) -> None:
        """URDB/SAM: tiers on the total of all periods, allocated pro rata to the periods."""
        names = self.plan.energy_period_names()
        q = {}
        for name in names:
            micro = sum(v for t, v in rows if self.period_of(t) == name)
            q[name] = _rounding(ch, "after_allowance", self.billed(ch, m, micro))
        total = sum(q.values(), Decimal(0))
        first = ch.periods[names[0]].tiers
        assert first is not None
        for i, tier in enumerate(first):
            if i > 0 and total <= tier.from_:
                continue
            top = total if tier.to is None else min(total, tier.to)
            units = max(top - tier.from_, Decimal(0))
            for name in names:
                tiers = ch.periods[name].tiers
                assert tiers is not None
                share = Fraction(units) * Fraction(q[name]) / Fraction(total) if total else 0
                alloc = _round_quantity(Fraction(share))
                self.add(ch.id, LineKind.TIER, alloc, ch.unit, tiers[i].price, tier=i, period=name)

    def demand(self, ch: Demand) -> None:
        m, rows = self.readings(ch.meter)
        window = ch.window_minutes * 60
        if rows and (m.interval_seconds > window or window % m.interval_seconds):
            raise RatingError("intervals cannot form demand windows")
        windows: list[tuple[int, int]] = []  # (window start, energy in micro-units)
        if m.interval_seconds == window:  # every interval row is a window of its own
            windows = list(rows)
        elif ch.window_type == "rolling":  # a window [t, t + W) starts at every reading
            for t, _ in rows:
                windows.append((t, sum(micro for u, micro in rows if t <= u < t + window)))
        else:  # fixed windows aligned to multiples of W
            fixed: dict[int, int] = {}
            for t, micro in rows:
                fixed[t // window * window] = fixed.get(t // window * window, 0) + micro
            windows = list(fixed.items())
        if UNITS[m.unit].dimension != "energy":
            raise RatingError(f"demand needs an energy meter, not {m.unit}")
        power = UNITS[m.unit].factor / UNITS[ch.unit].factor
        factor = (
            Fraction(power)
            * Fraction(ch.multiplier)
            * Fraction(m.multiplier)
            * Fraction(3600, window)
        )
        if ch.price is not None:
            peak = _round_quantity(
                Fraction(max((e for _, e in windows), default=0), MICRO) * factor
            )
            kind, billed = LineKind.DEMAND, peak
            if ch.ratchet is not None:
                history = list(self.period.previous_peaks.get(ch.id, []))[-ch.ratchet.months :]
                known = [_to_micro(v) for v in history if not math.isnan(v)]
                floor = _round_quantity(
                    Fraction(max(known, default=0), MICRO) * Fraction(ch.ratchet.percent) / 100
                )
                if floor > peak:
                    kind, billed = LineKind.RATCHET, floor
            billed = max(billed, ch.minimum)  # the minimum chargeable demand
            self.demand_line(ch, kind, billed, ch.price, None)
        names = ch.schedule.period_names() if ch.schedule else self.plan.energy_period_names()
        for name in names:
            if name in ch.period_prices:
                top = max(
                    (e for s, e in windows if self.period_of(s, ch.schedule) == name), default=0
                )
                q = _round_quantity(Fraction(top, MICRO) * factor)
                self.demand_line(ch, LineKind.DEMAND, q, ch.period_prices[name], name)

    def demand_line(
        self, ch: Demand, kind: LineKind, q: Decimal, price: Decimal, period: str | None
    ) -> None:
        """Demand × price, per day (× billed days) or prorated (× active / cycle days)."""
        if ch.price_per == "period" and not ch.prorate:
            self.add(ch.id, kind, q, ch.unit, price, period=period)
            return
        active, cycle = self.active_and_cycle_days(ch.prorate)
        if ch.price_per == "day":
            self.add(ch.id, kind, q, ch.unit, price * active, period=period)
            return
        exact = Fraction(q) * Fraction(price) * active / cycle * 10**self.minor
        whole, rest = divmod(exact.numerator, exact.denominator)
        if 2 * rest >= exact.denominator:
            whole += 1
        self.add(
            ch.id,
            kind,
            q,
            ch.unit,
            price * active / cycle,
            period=period,
            exact=q * price * active / cycle,
            rounded=Decimal(whole).scaleb(-self.minor),
        )

    def net_total(self, ch: NetMetering, meter: str, name: str | None) -> Decimal:
        """A register's total in the billing unit, in one TOU period (or all)."""
        m, rows = self.readings(meter)
        micro = sum(q for t, q in rows if name is None or self.period_of(t) == name)
        factor = _factor(m.unit, ch.unit) * Fraction(ch.multiplier) * Fraction(m.multiplier)
        return _round_quantity(Fraction(micro, MICRO) * factor)

    def net_metering(self, ch: NetMetering) -> None:
        """Import billed and export credited per period (or flat); net mode nets them."""
        names: list[str | None] = (
            list(self.plan.energy_period_names()) if ch.period_names() else [None]
        )
        for name in names:
            qi = self.net_total(ch, ch.meter, name)
            qe = self.net_total(ch, ch.export_meter, name)
            ip, ep = ch.import_price, ch.export_price
            if isinstance(ip, dict) and isinstance(ep, dict) and name is not None:
                ip, ep = ip[name], ep[name]
            assert isinstance(ip, Decimal)
            assert isinstance(ep, Decimal)
            zero = Decimal(0)
            billed, credited = (
                (qi, qe) if ch.mode == "gross" else (max(qi - qe, zero), max(qe - qi, zero))
            )
            self.add(ch.id, LineKind.USAGE, billed, ch.unit, ip, period=name)
            self.add(ch.id, LineKind.EXPORT_CREDIT, credited, ch.unit, -ep, period=name)
            if ch.mode == "net" and min(qi, qe) > 0:
                self.add(ch.id, LineKind.NETTED, min(qi, qe), ch.unit, zero, period=name)

    def taxes(self, ch: MeteredCharge) -> None:
        """Each tax: ``percent`` of the charge's rounded lines (after any cap)."""
        base = sum((li.amount for li in self.lines if li.charge_id == ch.id), Decimal(0))
        for tax in ch.taxes:
            self.add(ch.id, LineKind.TAX, base, self.plan.currency, tax.percent / 100)

    def percentage(self, ch: Percentage) -> None:
        """Each transaction in time order: free while the allowances last, then
        ``rate``% of its (remaining) amount + the fixed fee, within the per-transaction bounds."""
        m, rows = self.readings(ch.meter)
        if m.unit != "amount":
            raise RatingError(f"percentage needs a meter in 'amount', not {m.unit}")
        running, base_total, count = Decimal(0), Decimal(0), 0
        raised, lowered = Decimal(0), Decimal(0)
        for i, (_, micro) in enumerate(sorted(rows)):
            a = Decimal(micro) / MICRO
            before, running = running, running + a
            in_count = ch.free_transactions is None or i < ch.free_transactions
            if ch.free_amount is None:
                if ch.free_transactions is not None and in_count:
                    continue  # a free transaction
                base = a
            else:
                if in_count and running <= ch.free_amount:
                    continue
                base = a - (min(max(ch.free_amount - before, Decimal(0)), a) if in_count else 0)
            count += 1
            base_total += base
            fee = base * ch.rate / 100 + ch.fixed_fee
            if ch.min_per_transaction is not None and fee < ch.min_per_transaction:
                raised += ch.min_per_transaction - fee
            if ch.max_per_transaction is not None and fee > ch.max_per_transaction:
                lowered += fee - ch.max_per_transaction
        self.add(ch.id, LineKind.PERCENTAGE, base_total, self.plan.currency, ch.rate / 100)
        if ch.fixed_fee > 0:
            self.add(ch.id, LineKind.TRANSACTION_FEE, Decimal(count), "transaction", ch.fixed_fee)
        if raised > 0:
            self.add(ch.id, LineKind.TRANSACTION_MINIMUM, Decimal(1), "", raised)
        if lowered > 0:
            self.add(ch.id, LineKind.TRANSACTION_MAXIMUM, Decimal(1), "", -lowered)

    def discount(self, ch: Discount, lines: Sequence[LineItem]) -> None:
        """A coupon on the targeted lines, when this period starts inside its validity."""
        start = datetime.fromtimestamp(self.period.start, self.zone).date()
        if ch.valid_from is not None and start < ch.valid_from:
            return
        if ch.valid_until is not None and start >= ch.valid_until:
            return
        base = sum(
            (li.amount for li in lines if not ch.applies_to or li.charge_id in ch.applies_to),
            Decimal(0),
        )
        if base <= 0:
            return
        if ch.percent is not None:
            self.add(ch.id, LineKind.DISCOUNT, base, self.plan.currency, -ch.percent / 100)
        else:
            assert ch.amount is not None
            self.add(ch.id, LineKind.DISCOUNT, Decimal(1), "", -min(ch.amount, base))

    def days(self, start: int, end: int) -> int:
        return (end - start + DAY // 2) // DAY

    def active_and_cycle_days(self, prorate: bool) -> tuple[int, int]:
        p = self.period
        active = self.days(p.start, p.end)
        if prorate and p.cycle_start is not None and p.cycle_end is not None:
            cycle = max(self.days(p.cycle_start, p.cycle_end), 1)
            return min(active, cycle), cycle
        return max(active, 1), max(active, 1)

    def minimum(self, ch: MinimumCommitment, total: Decimal) -> None:
        committed = ch.amount
        if ch.prorate:
            active, cycle = self.active_and_cycle_days(True)
            exact = Fraction(ch.amount) * active / cycle * 10**self.minor
            whole, rest = divmod(exact.numerator, exact.denominator)
            if 2 * rest >= exact.denominator:
                whole += 1
            committed = Decimal(whole).scaleb(-self.minor)
        if total < committed:
            self.add(ch.id, LineKind.MINIMUM, Decimal(1), "", committed - total)

    def recurring(self, ch: Recurring) -> None:
        active, cycle = self.active_and_cycle_days(ch.prorate)
        # the exact rational amount decides the rounding, not its 28-digit Decimal image
        exact = Fraction(ch.amount) * active / cycle * 10**self.minor
        whole, rest = divmod(exact.numerator, exact.denominator)
        if 2 * rest >= exact.denominator:
            whole += 1
        self.add(
            ch.id,
            LineKind.RECURRING,
            Decimal(active),
            "day",
            ch.amount / cycle,
            exact=ch.amount * active / cycle,
            rounded=Decimal(whole).scaleb(-self.minor),
        )


def _usage_charge(sub: _Subscription, ch: MeteredCharge) -> None:
    if isinstance(ch, PerUnit):
        q = sub.chargeable(ch)
        sub.add(ch.id, LineKind.USAGE, q, ch.unit, ch.price)
    elif isinstance(ch, Graduated):
        q = sub.chargeable(ch)
        sub.graduated(ch.id, ch.unit, q, ch.tiers, fee_at_zero=ch.flat_fee_at_zero)
    elif isinstance(ch, Volume):
        sub.volume(ch.id, ch.unit, sub.chargeable(ch), ch)
    elif isinstance(ch, Package):
        q = sub.chargeable(ch)
        whole, rest = divmod(q, ch.size)
        packages = whole + (1 if rest else 0)  # every started package counts
        sub.add(ch.id, LineKind.PACKAGE, packages, f"package of {ch.size} {ch.unit}", ch.price)
    elif isinstance(ch, TimeOfUse):
        sub.time_of_use(ch)
    elif isinstance(ch, Percentage):
        sub.percentage(ch)
    elif isinstance(ch, NetMetering):
        sub.net_metering(ch)
    else:
        sub.demand(ch)


def rate_subscription(
    plan: Plan,
    period: Period,
    usage: Mapping[str, MeterReadings],
    *,
    index: int = 0,
) -> list[LineItem]:
    """Every line of one subscription on ``plan`` for ``period``, in invoice order."""
    sub = _Subscription(plan, index, period, usage)
    for ch in plan.charges:
        if not isinstance(ch, MinimumCommitment | Recurring | Discount | ProgressiveBilling):
            sub.negative(ch)
            _usage_charge(sub, ch)
            sub.cap(ch)
            sub.taxes(ch)
    usage_total = sum((li.amount for li in sub.lines), Decimal(0))
    for ch in plan.charges:
        if isinstance(ch, Recurring):
            sub.recurring(ch)
    with_fees = sum((li.amount for li in sub.lines), Decimal(0))
    for ch in plan.charges:
        if isinstance(ch, MinimumCommitment):
            sub.minimum(ch, with_fees if ch.includes_recurring else usage_total)
    undiscounted = list(sub.lines)
    for ch in plan.charges:
        if isinstance(ch, Discount):
            sub.discount(ch, undiscounted)
    for ch in plan.charges:
        if isinstance(ch, ProgressiveBilling) and period.billed_in_advance > 0:
            sub.add(ch.id, LineKind.BILLED_IN_ADVANCE, Decimal(1), "", -period.billed_in_advance)
    return sorted(sub.lines, key=lambda li: li.sort_key(plan))
