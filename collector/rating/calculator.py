"""``tally-price``: rate a quantity or a usage CSV on a plan file and print the lines.

    tally-price plan.yaml --quantity 1234.5 [--unit kWh] [--meter energy] [--json]
    tally-price plan.yaml --usage usage.csv [--usage other.csv ...] --unit Wh [--interval 900]
                [--period-start 2026-03-01T00:00+01:00 --period-end 2026-04-01T00:00+02:00]
                [--cycle-start ... --cycle-end ...] [--previous-peak 180 ...]
                [--hide-unused-periods] [--json]
    tally-price plan.yaml --at 2026-07-01T18:30+02:00 [--json]

The CSV has a header with ``interval_start`` (ISO-8601 with offset), ``quantity`` and optionally
``meter`` (default ``default``). Each ``--usage`` file is one meter installation, rated in one
run; the output has its lines, a total per file and a grand total. ``--at`` prints the TOU
period in force at an instant and every charge's price then. Exit status 2 on an invalid plan,
usage or arguments.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from collector.errors import PlanError, RatingError
from collector.rating.currencies import minor_unit_exponent
from collector.rating.engine import rate, rate_quantity
from collector.rating.inputs import IntervalUsage, Subscriptions
from collector.rating.lines import LineItem
from collector.rating.plan import (
    Demand,
    Graduated,
    NetMetering,
    PerUnit,
    Plan,
    Recurring,
    TimeOfUse,
    Volume,
    load_plan,
)
from collector.rating.tou_table import build_table

Rows = dict[str, list[tuple[int, float]]]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tally-price", description="Price usage on a Tally plan.")
    p.add_argument("plan", type=Path, help="plan file (YAML or JSON, format tally.plan/v1)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--quantity", help="a total quantity (decimal)")
    src.add_argument(
        "--usage",
        type=Path,
        action="append",
        help="CSV: interval_start,quantity[,meter]; repeat for several meters",
    )
    src.add_argument("--at", help="ISO-8601 instant: print the TOU period and prices in force")
    p.add_argument(
        "--hide-unused-periods",
        action="store_true",
        help="with --usage: leave out lines of TOU periods that never occur in the period",
    )
    p.add_argument("--unit", help="unit of --quantity / the CSV quantities (e.g. Wh, kWh, MB)")
    p.add_argument("--meter", help="with --quantity: only charges of this meter")
    p.add_argument(
        "--interval", type=int, help="interval length in seconds (CSV; default: inferred)"
    )
    p.add_argument("--period-start", help="ISO-8601 start of the period (default: first reading)")
    p.add_argument("--period-end", help="ISO-8601 end of the period (default: after last reading)")
    p.add_argument("--cycle-start", help="ISO-8601 start of the whole billing cycle (proration)")
    p.add_argument("--cycle-end", help="ISO-8601 end of the whole billing cycle (proration)")
    p.add_argument(
        "--previous-peak",
        type=float,
        action="append",
        default=[],
        help="peak demand of a previous month, oldest first (repeat; ratchets)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _instant(text: str, what: str) -> int:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise RatingError(f"{what}: not an ISO-8601 time: {text!r}") from None
    if dt.tzinfo is None:
        raise RatingError(f"{what}: give a UTC offset, e.g. {text}+01:00 or {text}Z")
    return int(dt.timestamp())


def read_usage_csv(path: Path) -> Rows:
    """Readings per meter from a CSV file (``interval_start,quantity[,meter]``)."""
    rows: Rows = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for n, rec in enumerate(csv.DictReader(fh), start=2):
                if "interval_start" not in rec or "quantity" not in rec:
                    raise RatingError("the CSV needs columns interval_start and quantity")
                meter = (rec.get("meter") or "default").strip()
                try:
                    qty = float(rec["quantity"])
                except ValueError:
                    raise RatingError(f"line {n}: bad quantity {rec['quantity']!r}") from None
                rows.setdefault(meter, []).append(
                    (_instant(rec["interval_start"].strip(), f"line {n}"), qty)
                )
    except OSError as exc:
        raise RatingError(f"cannot read {path}: {exc}") from exc
    return rows


def _interval(rows: Rows, given: int | None) -> int:
    if given is not None:
        return given
    steps = [
        b - a
        for r in rows.values()
        for a, b in zip(sorted(t for t, _ in r), sorted(t for t, _ in r)[1:], strict=False)
        if b > a
    ]
    return min(steps, default=900)


def rate_csv(plan: Plan, rows: Rows, args: argparse.Namespace) -> list[LineItem]:
    """Rate the CSV readings of one subscription."""
    return rate_csvs(plan, [rows], args)[0]


def rate_csvs(plan: Plan, files: Sequence[Rows], args: argparse.Namespace) -> list[list[LineItem]]:
    """Rate the readings of several meter installations (one per CSV) in one run."""
    if not args.unit:
        raise RatingError("--usage needs --unit (the unit of the CSV quantities)")
    merged: Rows = {}
    for rows in files:
        for meter, r in rows.items():
            merged.setdefault(meter, []).extend(r)
    interval = _interval(merged, args.interval)
    start, end = _period(merged, interval, args)
    n = len(files)
    cycle = None
    if args.cycle_start or args.cycle_end:
        cycle = (
            np.full(n, _instant(args.cycle_start or "", "--cycle-start"), np.int64),
            np.full(n, _instant(args.cycle_end or "", "--cycle-end"), np.int64),
        )
    peaks = np.array([args.previous_peak] * n, dtype=np.float64).reshape(n, -1)
    subs = Subscriptions(
        period_start=np.full(n, start, np.int64),
        period_end=np.full(n, end, np.int64),
        cycle_start=None if cycle is None else cycle[0],
        cycle_end=None if cycle is None else cycle[1],
        previous_peaks={c.id: peaks for c in plan.charges if isinstance(c, Demand) and c.ratchet},
    )
    usage = []
    for meter in merged:
        parts = [(i, t, q) for i, rows in enumerate(files) for t, q in rows.get(meter, [])]
        usage.append(
            IntervalUsage(
                unit=args.unit,
                interval_seconds=interval,
                meter=meter,
                subscription=np.array([i for i, _, _ in parts], np.int32),
                start=np.array([t for _, t, _ in parts], np.int64),
                quantity=np.array([q for _, _, q in parts], np.float64),
            )
        )
    lines = rate(plan, subs, usage).by_subscription()
    if args.hide_unused_periods and plan.schedule is not None:
        used = set(periods_in_force(plan, start, end))
        lines = [[li for li in ls if li.period is None or li.period in used] for ls in lines]
    return lines


def _period(rows: Rows, interval: int, args: argparse.Namespace) -> tuple[int, int]:
    starts = [t for r in rows.values() for t, _ in r]
    if not starts and not (args.period_start and args.period_end):
        raise RatingError("the CSV has no readings; give --period-start and --period-end")
    start = _instant(args.period_start, "--period-start") if args.period_start else min(starts)
    end = _instant(args.period_end, "--period-end") if args.period_end else max(starts) + interval
    if end <= start:
        raise RatingError("the period must end after it starts")
    return start, end


def periods_in_force(plan: Plan, start: int, end: int) -> list[str]:
    """TOU periods that occur in ``[start, end)`` (schedule, zone, weekends and holidays)."""
    names = plan.energy_period_names()
    if not names:
        return []
    table = build_table(plan, start, end - 1)
    return [names[int(i)] for i in sorted(set(np.unique(table.table).tolist()))]


def prices_at(plan: Plan, at: int) -> tuple[str | None, list[tuple[str, str, str]]]:
    """The TOU period in force at ``at`` and ``(charge, what, price)`` of every charge then."""
    period = periods_in_force(plan, at, at + 1)
    name = period[0] if period else None
    out: list[tuple[str, str, str]] = []
    for ch in plan.charges:
        if isinstance(ch, TimeOfUse) and name is not None:
            pp = ch.periods[name]
            if pp.price is not None:
                out.append((ch.id, f"{name} per {ch.unit}", _plain(pp.price)))
            for i, t in enumerate(pp.tiers or ()):
                out.append((ch.id, f"{name} tier {i + 1} per {ch.unit}", _plain(t.price)))
        elif isinstance(ch, Demand):
            if ch.price is not None:
                out.append((ch.id, f"demand per {ch.unit}", _plain(ch.price)))
            if name is not None and name in ch.period_prices:
                out.append((ch.id, f"{name} demand per {ch.unit}", _plain(ch.period_prices[name])))
        elif isinstance(ch, NetMetering):
            out += _net_metering_prices(ch, name)
        elif isinstance(ch, PerUnit):
            out.append((ch.id, f"per {ch.unit}", _plain(ch.price)))
        elif isinstance(ch, Graduated | Volume):
            for i, t in enumerate(ch.tiers):
                out.append((ch.id, f"tier {i + 1} per {ch.unit}", _plain(t.price)))
        elif isinstance(ch, Recurring):
            out.append((ch.id, "per cycle", _plain(ch.amount)))
    return name, out


def _net_metering_prices(ch: NetMetering, name: str | None) -> list[tuple[str, str, str]]:
    out = []
    for what, price in (("import", ch.import_price), ("export credit", ch.export_price)):
        if not isinstance(price, dict):
            out.append((ch.id, f"{what} per {ch.unit}", _plain(price)))
        elif name is not None:
            out.append((ch.id, f"{name} {what} per {ch.unit}", _plain(price[name])))
    return out


def _plain(d: Decimal) -> str:
    """A decimal without exponent notation (``0E-8`` → ``0``)."""
    return f"{(Decimal(0) if d == 0 else d).normalize():f}"


def money(d: Decimal, exp: int) -> str:
    """An amount with at least the currency's decimals, never in exponent notation: zero
    prints ``0.00`` (EUR), ``0`` (JPY); 12.3456 stays ``12.3456``."""
    if d == 0:
        d = Decimal(0)
    n = d.normalize().as_tuple().exponent
    places = max(exp, -n if isinstance(n, int) and n < 0 else 0)
    return f"{d:.{places}f}"


def _line_json(li: LineItem, exp: int) -> dict[str, object]:
    return {
        "charge": li.charge_id,
        "kind": li.kind.value,
        "description": li.description,
        "period": li.period,
        "tier": None if li.tier is None else li.tier + 1,
        "quantity": f"{li.quantity:f}",
        "unit": li.unit,
        "unit_price": f"{li.unit_price:f}",
        "amount_unrounded": money(li.amount_unrounded, exp),
        "amount": money(li.amount, exp),
    }


def _total(lines: Sequence[LineItem]) -> Decimal:
    return sum((li.amount for li in lines), Decimal(0))


def _json(plan: Plan, groups: Sequence[Sequence[LineItem]], names: Sequence[str]) -> str:
    exp = minor_unit_exponent(plan.currency)
    out: dict[str, object] = {"plan": plan.id, "version": plan.version, "currency": plan.currency}
    if len(groups) == 1:
        out["lines"] = [_line_json(li, exp) for li in groups[0]]
    else:
        out["meters"] = [
            {
                "usage": name,
                "lines": [_line_json(li, exp) for li in lines],
                "total": money(_total(lines), exp),
            }
            for name, lines in zip(names, groups, strict=True)
        ]
    out["total"] = money(sum((_total(g) for g in groups), Decimal(0)), exp)
    return json.dumps(out, indent=2)


def _table(
    plan: Plan, groups: Sequence[Sequence[LineItem]], names: Sequence[str], console: Console
) -> None:
    exp = minor_unit_exponent(plan.currency)
    table = Table(title=f"{plan.name or plan.id} v{plan.version} ({plan.currency})")
    cols = ("Charge", "Period", "Tier", "Kind", "Quantity", "Unit", "Unit price", "Exact")
    for col in (*cols, "Amount"):
        table.add_column(
            col, justify="right" if col in {"Quantity", "Unit price", "Exact", "Amount"} else "left"
        )
    for name, lines in zip(names, groups, strict=True):
        if len(groups) > 1:
            table.add_section()
            table.add_row(f"[bold]{name}[/bold]", *[""] * 8)
        for li in lines:
            table.add_row(
                li.charge_id,
                li.period or "",
                "" if li.tier is None else str(li.tier + 1),
                li.kind.value,
                _plain(li.quantity),
                li.unit,
                _plain(li.unit_price),
                money(li.amount_unrounded, exp),
                money(li.amount, exp),
            )
        if len(groups) > 1:
            table.add_row("Subtotal", *[""] * 7, money(_total(lines), exp))
    table.add_section()
    table.add_row("Total", *[""] * 7, money(sum((_total(g) for g in groups), Decimal(0)), exp))
    console.print(table)


def _print_at(plan: Plan, text: str, as_json: bool) -> None:
    name, prices = prices_at(plan, _instant(text, "--at"))
    if as_json:
        rows = [{"charge": c, "price": what, "amount": p} for c, what, p in prices]
        doc = {"plan": plan.id, "at": text, "period": name, "prices": rows}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    table = Table(title=f"{plan.name or plan.id} at {text}: period {name or '(no schedule)'}")
    for col in ("Charge", "Price", plan.currency):
        table.add_column(col, justify="right" if col == plan.currency else "left")
    for row in prices:
        table.add_row(*row)
    Console().print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tally-price``."""
    args = _parser().parse_args(argv)
    err = Console(stderr=True)
    try:
        plan = load_plan(args.plan)
        if args.at is not None:
            _print_at(plan, args.at, args.json)
            return 0
        names = ["quantity"]
        if args.quantity is not None:
            try:
                qty = Decimal(args.quantity)
            except InvalidOperation:
                raise RatingError(f"--quantity: not a number: {args.quantity!r}") from None
            groups = [rate_quantity(plan, qty, unit=args.unit, meter=args.meter)]
        else:
            names = [str(p) for p in args.usage]
            groups = rate_csvs(plan, [read_usage_csv(p) for p in args.usage], args)
    except (PlanError, RatingError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    if args.json:
        sys.stdout.write(_json(plan, groups, names) + "\n")
    else:
        _table(plan, groups, names, Console())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
