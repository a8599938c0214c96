"""Hypothesis properties of the rating engine against the Decimal reference and itself."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import RatingError
from collector.rating import parse_plan, rate_quantity
from tests.collector.rating.rating_support import comparable, engine_lines, reference_lines

T0 = 1_774_224_000  # 2026-03-23T00:00Z: the window below spans the EU/US DST changes
SPAN = 21 * 86_400
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
PERIODS = ["peak", "shoulder", "offpeak"]

prices = st.decimals(min_value=0, max_value=50, places=4).map(str)
small_amounts = st.decimals(min_value=0, max_value=500, places=2).map(str)
whole_amounts = st.integers(0, 900).map(str)  # valid in EUR, JPY and KWD alike


roundings = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["ceil", "floor", "round"]),
        "precision": st.integers(0, 3),
        "step": st.sampled_from(["before_conversion", "after_conversion", "after_allowance"]),
    }
)


@st.composite
def percentage_options(draw: st.DrawFn) -> dict[str, Any]:
    """Lago's percentage options: free transactions/amount, per-transaction bounds."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["free_transactions"] = draw(st.integers(0, 4))
    if draw(st.booleans()):
        out["free_amount"] = str(draw(st.decimals(min_value=0, max_value=3000, places=2)))
    bounds = sorted(draw(st.lists(small_amounts.map(Decimal), min_size=2, max_size=2)))
    if draw(st.booleans()):
        out["min_per_transaction"] = str(bounds[0])
    if draw(st.booleans()):
        out["max_per_transaction"] = str(bounds[1])
    return out


@st.composite
def tiers(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Valid half-open tiers from 0 to open-ended, with random prices and flat fees."""
    bounds = sorted(
        draw(st.sets(st.decimals(min_value=Decimal("0.001"), max_value=200, places=3), max_size=3))
    )
    edges = [Decimal(0), *bounds]
    out: list[dict[str, Any]] = []
    for i, lo in enumerate(edges):
        tier: dict[str, Any] = {"from": str(lo), "price": draw(prices)}
        if i + 1 < len(edges):
            tier["to"] = str(edges[i + 1])
        if draw(st.booleans()):
            tier["flat_fee"] = draw(small_amounts)
        out.append(tier)
    return out


def written_up_to(t: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same bounds in the inclusive ``up_to`` notation (the last tier ``inf``)."""
    return [
        {**{k: v for k, v in x.items() if k not in ("from", "to")}, "up_to": x.get("to", "inf")}
        for x in t
    ]


@st.composite
def tiered(draw: st.DrawFn) -> dict[str, Any]:
    """Tiers in either notation, with or without the first flat fee at zero usage."""
    t = draw(tiers())
    for tier in t:  # Kill Bill's blocks inside tiers
        if draw(st.integers(0, 3)) == 0:
            tier["block"] = draw(st.sampled_from(["1", "2.5", "10"]))
    out: dict[str, Any] = {"tiers": written_up_to(t) if draw(st.booleans()) else t}
    if draw(st.booleans()):
        out["flat_fee_at_zero"] = draw(st.booleans())
    return out


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    """A random seasonal schedule over 2-3 periods (all of them used)."""
    names = PERIODS[: draw(st.integers(2, 3))]
    hour = st.sampled_from(names)
    profile = st.lists(hour, min_size=24, max_size=24)
    split = draw(st.integers(1, 11))
    first: list[str] = draw(profile)
    first[: len(names)] = names  # every period appears somewhere
    seasons = {
        "a": {
            "months": list(range(1, split + 1)),
            "weekday": first,
            "weekend": draw(profile),
        },
        "b": {
            "months": list(range(split + 1, 13)),
            "weekday": draw(profile),
            "weekend": draw(profile),
        },
    }
    return {"seasons": seasons}


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid plan using every kind of charge."""
    sched = draw(schedules())
    names = sorted(
        {n for s in sched["seasons"].values() for k in ("weekday", "weekend") for n in s[k]}
    )
    unit = draw(st.sampled_from(["kWh", "Wh", "MWh"]))
    mult = draw(st.sampled_from(["1", "1", "40", "0.5"]))
    included = draw(st.sampled_from(["0", "0", "1.5", "10"]))
    tou_prices = {
        n: ({"price": draw(prices)} if draw(st.booleans()) else draw(tiered())) for n in names
    }
    tou_basis = draw(st.sampled_from(["period", "month_total"]))
    if tou_basis == "month_total":  # URDB/SAM: one set of bounds, a rate per period and tier
        shared = draw(tiers())
        tou_prices = {
            n: {"tiers": [{**t, "flat_fee": "0", "price": draw(prices)} for t in shared]}
            for n in names
        }
    charges: list[dict[str, Any]] = [
        {
            "type": "per_unit",
            "id": "pu",
            "unit": unit,
            "price": draw(prices),
            "included": included,
            "multiplier": mult,
        },
        {"type": "graduated", "id": "gr", "unit": "kWh", **draw(tiered()), "included": included},
        {"type": "volume", "id": "vo", "unit": "kWh", **draw(tiered())},
        {
            "type": "package",
            "id": "pk",
            "unit": "kWh",
            "size": draw(st.sampled_from(["1", "2.5", "100"])),
            "price": draw(prices),
            "included": included,
        },
        {
            "type": "time_of_use",
            "id": "tou",
            "unit": "kWh",
            "periods": tou_prices,
            "tier_basis": tou_basis,
        },
        {
            "type": "demand",
            "id": "dm",
            "unit": draw(st.sampled_from(["kW", "W"])),
            "window_minutes": draw(st.sampled_from([15, 30, 60])),
            "window_type": draw(st.sampled_from(["fixed", "rolling"])),
            "price": draw(prices),
            "period_prices": {names[0]: draw(prices)},
            "ratchet": {"percent": draw(st.sampled_from(["80", "62.5", "100"])), "months": 2},
            "minimum": draw(st.sampled_from(["0", "0.5", "40"])),
            **draw(
                st.sampled_from(
                    [{}, {"price_per": "day"}, {"prorate": True}, {"price_per": "period"}]
                )
            ),
        },
        {
            "type": "net_metering",
            "id": "nm",
            "unit": "kWh",
            "export_meter": "export",
            "mode": draw(st.sampled_from(["net", "gross"])),
            **(
                {
                    "import_price": {n: draw(prices) for n in names},
                    "export_price": {n: draw(prices) for n in names},
                }
                if draw(st.booleans())
                else {"import_price": draw(prices), "export_price": draw(prices)}
            ),
        },
        {
            "type": "percentage",
            "id": "pct",
            "meter": "payments",
            "rate": str(draw(st.decimals(min_value=0, max_value=10, places=3))),
            "fixed_fee": draw(st.sampled_from(["0", "0.10", "0.035"])),
            **draw(percentage_options()),
        },
        {
            "type": "discount",
            "id": "off",
            **draw(
                st.sampled_from(
                    [{"percent": "12.5"}, {"amount": "7"}, {"percent": "100"}, {"amount": "900"}]
                )
            ),
            "applies_to": draw(st.sampled_from([[], ["pu"], ["gr", "fee", "min"]])),
            "valid_from": draw(st.sampled_from([None, "2026-03-25"])),
            "valid_until": draw(st.sampled_from([None, "2026-04-02"])),
        },
        {"type": "progressive_billing", "id": "interim", "thresholds": ["50", "400"]},
        {
            "type": "minimum_commitment",
            "id": "min",
            "amount": draw(whole_amounts),
            "includes_recurring": draw(st.booleans()),
            "prorate": draw(st.booleans()),
        },
        {
            "type": "recurring",
            "id": "fee",
            "amount": draw(whole_amounts),
            "prorate": draw(st.booleans()),
        },
    ]
    if draw(st.booleans()):  # the demand's own schedule (names may overlap the plan's)
        own = draw(schedules())
        demand = next(ch for ch in charges if ch["type"] == "demand")
        demand["schedule"] = {
            "seasons": {
                k: {
                    **v,
                    "weekday": [f"d_{n}" for n in v["weekday"]],
                    "weekend": [f"d_{n}" if i % 2 else n for i, n in enumerate(v["weekend"])],
                }
                for k, v in own["seasons"].items()
            }
        }
        seen = {
            n
            for x in demand["schedule"]["seasons"].values()
            for k in ("weekday", "weekend")
            for n in x[k]
        }
        demand["period_prices"] = {n: draw(prices) for n in sorted(seen)[:2]}
    negative = draw(st.sampled_from(["reject", "flag"]))
    for ch in charges:
        if "unit" in ch or ch["type"] == "percentage":
            ch["negative_usage"] = negative
            if draw(st.booleans()):
                ch["maximum"] = draw(whole_amounts)  # a spend cap
            if draw(st.booleans()):  # several taxes per charge
                ch["taxes"] = [{"id": "t1", "percent": "21"}, {"id": "t2", "percent": "0.125"}]
        if "unit" in ch and ch["type"] not in ("demand", "net_metering") and draw(st.booleans()):
            ch["rounding"] = draw(roundings)
    return {
        "format": "tally.plan/v1",
        "id": "random",
        "version": 1,
        "currency": draw(st.sampled_from(["EUR", "JPY", "KWD"])),
        "time_zone": draw(st.sampled_from(ZONES)),
        "schedule": sched,
        "holidays": ["2026-03-29", "2026-04-03"],
        "charges": charges,
    }


@st.composite
def usage(draw: st.DrawFn) -> tuple[int, list[tuple[int, int, float]]]:
    """Some subscriptions and 15-minute or 5-minute readings, some outside the periods."""
    subs = draw(st.integers(1, 3))
    interval = draw(st.sampled_from([300, 900]))
    slot = st.integers(-4, SPAN // interval + 4)
    qty = st.one_of(
        st.floats(min_value=0, max_value=5_000, allow_nan=False),
        st.floats(min_value=-50, max_value=0, allow_nan=False),  # export, corrections
    )
    rows = draw(st.lists(st.tuples(st.integers(0, subs - 1), slot, qty), max_size=60))
    seen: set[tuple[int, int]] = set()
    out = []
    for s, k, q in rows:
        if (s, k) not in seen:
            seen.add((s, k))
            out.append((s, T0 + k * interval, q))
    return interval, [(subs, 0, 0.0), *out]


@settings(max_examples=60, deadline=None)
@given(
    plan=plans(),
    data=usage(),
    cut=st.integers(0, SPAN - 1),
    peaks=st.lists(st.one_of(st.just(float("nan")), st.floats(0, 500)), min_size=8, max_size=8),
)
def test_engine_equals_reference_on_random_plans(
    plan: dict[str, Any],
    data: tuple[int, list[tuple[int, int, float]]],
    cut: int,
    peaks: list[float],
) -> None:
    """The vectorised engine produces exactly the reference's lines for every charge type."""
    interval, rows = data
    subs = rows[0][0]
    rows = rows[1:]
    p = parse_plan(plan)
    periods = [(T0 + (cut if i % 2 else 0), T0 + SPAN) for i in range(subs)]
    cycles = [(T0, T0 + SPAN + 86_400 * 9)] * subs
    prev = {"dm": [peaks[2 * i : 2 * i + 2] for i in range(subs)]}
    export = [(s, t, abs(q) * (0.3 if k % 2 else 1.7)) for k, (s, t, q) in enumerate(rows)]
    usage_map = {
        "default": ("Wh", interval, rows),
        "payments": ("amount", interval, rows),
        "export": ("Wh", interval, export),
    }
    mult = ["1", "40", "0.25"][:subs]  # per-installation meter multipliers (CT ratios)
    billed = ["0", "37", "250"][:subs]  # billed on interim invoices (progressive billing)
    kw: dict[str, Any] = {
        "cycles": cycles,
        "previous_peaks": prev,
        "multipliers": mult,
        "billed": billed,
    }
    try:
        want = reference_lines(p, periods, usage_map, **kw)
    except RatingError:  # negative readings under negative_usage: reject
        assert plan["charges"][0]["negative_usage"] == "reject"
        with pytest.raises(RatingError, match="negative"):
            engine_lines(p, periods, usage_map, **kw)
        return
    got = engine_lines(p, periods, usage_map, **kw)
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=False):
            assert comparable(a) == comparable(b)  # the first differing line
        assert len(g) == len(w)


def _graduated_plan(t: list[dict[str, Any]]) -> Any:
    return parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "g",
            "version": 1,
            "currency": "EUR",
            "charges": [{"type": "graduated", "id": "g", "unit": "kWh", "tiers": t}],
        }
    )


def _total(lines: Any) -> Decimal:
    return sum((li.amount_unrounded for li in lines), Decimal(0))


@given(t=tiers(), a=st.decimals(0, 1000, places=6), b=st.decimals(0, 1000, places=6))
def test_graduated_is_monotone_in_quantity(t: list[dict[str, Any]], a: Decimal, b: Decimal) -> None:
    """More usage never costs less on a graduated charge (exact and rounded)."""
    plan = _graduated_plan(t)
    lo, hi = sorted((a, b))
    assert _total(rate_quantity(plan, lo)) <= _total(rate_quantity(plan, hi))


@given(price=prices, fee=small_amounts, q=st.decimals(0, 10_000, places=6))
def test_volume_with_one_tier_equals_per_unit(price: str, fee: str, q: Decimal) -> None:
    """A one-tier volume charge bills exactly what a per-unit charge at that price bills."""
    base = {"format": "tally.plan/v1", "id": "v", "version": 1, "currency": "EUR"}
    vol = parse_plan(
        {
            **base,
            "charges": [
                {
                    "type": "volume",
                    "id": "c",
                    "unit": "kWh",
                    "tiers": [{"from": "0", "price": price}],
                }
            ],
        }
    )
    pu = parse_plan(
        {**base, "charges": [{"type": "per_unit", "id": "c", "unit": "kWh", "price": price}]}
    )
    assert [li.amount_unrounded for li in rate_quantity(vol, q)] == [
        li.amount_unrounded for li in rate_quantity(pu, q)
    ]


@given(price=prices, a=st.decimals(0, 10_000, places=6), b=st.decimals(0, 10_000, places=6))
def test_per_unit_is_additive_over_a_split_within_one_minor_unit(
    price: str, a: Decimal, b: Decimal
) -> None:
    """Rating a+b once differs from rating a and b separately by at most one cent (exactly 0
    before rounding): rounding happens once per line, never per reading."""
    plan = parse_plan(
        {
            "format": "tally.plan/v1",
            "id": "p",
            "version": 1,
            "currency": "EUR",
            "charges": [{"type": "per_unit", "id": "c", "unit": "kWh", "price": price}],
        }
    )
    (whole,) = rate_quantity(plan, a + b)
    (left,) = rate_quantity(plan, a)
    (right,) = rate_quantity(plan, b)
    assert whole.amount_unrounded == left.amount_unrounded + right.amount_unrounded
    assert abs(whole.amount - (left.amount + right.amount)) <= Decimal("0.01")


@given(t=tiers(), a=st.decimals(0, 500, places=6), b=st.decimals(0, 500, places=6))
def test_graduated_split_is_subadditive(t: list[dict[str, Any]], a: Decimal, b: Decimal) -> None:
    """Splitting a period in two and applying the tiers to each half never bills less usage
    charge than the whole period (tiers restart), exact amounts, when prices fall with tiers."""
    ordered = sorted((Decimal(x["price"]) for x in t), reverse=True)
    falling = [{**x, "price": str(p), "flat_fee": "0"} for x, p in zip(t, ordered, strict=True)]
    plan = _graduated_plan(falling)
    assert _total(rate_quantity(plan, a + b)) <= (
        _total(rate_quantity(plan, a)) + _total(rate_quantity(plan, b))
    )
