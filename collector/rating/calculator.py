"""``tally-price``: rate a quantity or a usage CSV on a plan file and print the lines.

    tally-price plan.yaml --quantity 1234.5 [--unit kWh] [--meter energy] [--json]
    tally-price plan.yaml --usage usage.csv --unit Wh [--interval 900]
                [--period-start 2026-03-01T00:00+01:00 --period-end 2026-04-01T00:00+02:00]
                [--cycle-start ... --cycle-end ...] [--previous-peak 180 ...] [--json]

The CSV has a header with ``interval_start`` (ISO-8601 with offset), ``quantity`` and optionally
``meter`` (default ``default``). Exit status 2 on an invalid plan, usage or arguments.
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
from collector.rating.engine import rate, rate_quantity
from collector.rating.inputs import IntervalUsage, Subscriptions
from collector.rating.lines import LineItem
from collector.rating.plan import Demand, Plan, load_plan

Rows = dict[str, list[tuple[int, float]]]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tally-price", description="Price usage on a Tally plan.")
    p.add_argument("plan", type=Path, help="plan file (YAML or JSON, format tally.plan/v1)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--quantity", help="a total quantity (decimal)")
    src.add_argument("--usage", type=Path, help="CSV: interval_start,quantity[,meter]")
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
    if not args.unit:
        raise RatingError("--usage needs --unit (the unit of the CSV quantities)")
    interval = _interval(rows, args.interval)
    starts = [t for r in rows.values() for t, _ in r]
    if not starts and not (args.period_start and args.period_end):
        raise RatingError("the CSV has no readings; give --period-start and --period-end")
    start = _instant(args.period_start, "--period-start") if args.period_start else min(starts)
    end = _instant(args.period_end, "--period-end") if args.period_end else max(starts) + interval
    cycle = None
    if args.cycle_start or args.cycle_end:
        cycle = (
            np.array([_instant(args.cycle_start or "", "--cycle-start")], np.int64),
            np.array([_instant(args.cycle_end or "", "--cycle-end")], np.int64),
        )
    peaks = np.array([args.previous_peak], dtype=np.float64)
    subs = Subscriptions(
        period_start=np.array([start], np.int64),
        period_end=np.array([end], np.int64),
        cycle_start=None if cycle is None else cycle[0],
        cycle_end=None if cycle is None else cycle[1],
        previous_peaks={c.id: peaks for c in plan.charges if isinstance(c, Demand) and c.ratchet},
    )
    usage = [
        IntervalUsage(
            unit=args.unit,
            interval_seconds=interval,
            meter=meter,
            subscription=np.zeros(len(r), np.int32),
            start=np.array([t for t, _ in r], np.int64),
            quantity=np.array([q for _, q in r], np.float64),
        )
        for meter, r in rows.items()
    ]
    return rate(plan, subs, usage).by_subscription()[0]


def _json(plan: Plan, lines: Sequence[LineItem]) -> str:
    out = {
        "plan": plan.id,
        "version": plan.version,
        "currency": plan.currency,
        "lines": [
            {
                "charge": li.charge_id,
                "kind": li.kind.value,
                "description": li.description,
                "period": li.period,
                "tier": None if li.tier is None else li.tier + 1,
                "quantity": str(li.quantity),
                "unit": li.unit,
                "unit_price": str(li.unit_price),
                "amount_unrounded": str(li.amount_unrounded),
                "amount": str(li.amount),
            }
            for li in lines
        ],
        "total": str(sum((li.amount for li in lines), Decimal(0))),
    }
    return json.dumps(out, indent=2)


def _table(plan: Plan, lines: Sequence[LineItem], console: Console) -> None:
    table = Table(title=f"{plan.name or plan.id} v{plan.version} ({plan.currency})")
    for col in (
        "Charge",
        "Period",
        "Tier",
        "Kind",
        "Quantity",
        "Unit",
        "Unit price",
        "Exact",
        "Amount",
    ):
        table.add_column(
            col, justify="right" if col in {"Quantity", "Unit price", "Exact", "Amount"} else "left"
        )
    for li in lines:
        table.add_row(
            li.charge_id,
            li.period or "",
            "" if li.tier is None else str(li.tier + 1),
            li.kind.value,
            f"{li.quantity.normalize():f}",
            li.unit,
            f"{li.unit_price.normalize():f}",
            f"{li.amount_unrounded.normalize():f}",
            f"{li.amount}",
        )
    total = sum((li.amount for li in lines), Decimal(0))
    table.add_section()
    table.add_row("Total", "", "", "", "", "", "", "", f"{total}")
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tally-price``."""
    args = _parser().parse_args(argv)
    err = Console(stderr=True)
    try:
        plan = load_plan(args.plan)
        if args.quantity is not None:
            try:
                qty = Decimal(args.quantity)
            except InvalidOperation:
                raise RatingError(f"--quantity: not a number: {args.quantity!r}") from None
            lines = rate_quantity(plan, qty, unit=args.unit, meter=args.meter)
        else:
            lines = rate_csv(plan, read_usage_csv(args.usage), args)
    except (PlanError, RatingError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    if args.json:
        sys.stdout.write(_json(plan, lines) + "\n")
    else:
        _table(plan, lines, Console())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
