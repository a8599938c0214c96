"""The tally-price calculator CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collector.rating.calculator import main

EXAMPLES = Path(__file__).parents[3] / "collector" / "rating" / "examples"


def test_quantity_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    """--quantity with --json prints the lines and the total."""
    assert main([str(EXAMPLES / "graduated.yaml"), "--quantity", "620", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["total"], [li["amount"] for li in out["lines"]]) == (
        "159.00",
        ["30.00", "100.00", "24.00", "5.00"],
    )


def test_quantity_as_table(capsys: pytest.CaptureFixture[str]) -> None:
    """The default output is a table ending with the total."""
    assert main([str(EXAMPLES / "volume.yaml"), "--quantity", "12345"]) == 0
    assert "71.73" in capsys.readouterr().out


def test_usage_csv_with_time_of_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV of readings is rated with TOU periods in the plan's zone."""
    csv = tmp_path / "usage.csv"
    csv.write_text(
        "interval_start,quantity\n"
        "2026-04-02T12:00:00+02:00,1000\n"  # Thursday noon: peak
        "2026-04-02T12:15:00+02:00,500\n"
        "2026-04-03T12:00:00+02:00,2000\n"
    )  # Good Friday: holiday, off-peak
    args = [
        str(EXAMPLES / "time_of_use.yaml"),
        "--usage",
        str(csv),
        "--unit",
        "Wh",
        "--json",
        "--period-start",
        "2026-04-01T00:00+02:00",
        "--period-end",
        "2026-05-01T00:00+02:00",
    ]
    assert main(args) == 0
    lines = {li["period"]: li["amount"] for li in json.loads(capsys.readouterr().out)["lines"]}
    assert lines == {"offpeak": "0.36", "peak": "0.48"}


def test_invalid_plan_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A plan error is printed with its path and the exit status is 2."""
    plan = tmp_path / "bad.yaml"
    plan.write_text(
        "format: tally.plan/v1\nid: x\nversion: 1\ncurrency: EUR\ncharges:\n"
        "  - {type: per_unit, id: e, unit: kWh, price: -1}\n"
    )
    assert main([str(plan), "--quantity", "1"]) == 2
    assert "charges[0].price" in capsys.readouterr().err


def test_demand_needs_usage_not_a_quantity(capsys: pytest.CaptureFixture[str]) -> None:
    """A demand plan priced from a bare quantity exits 2 with an explanation."""
    assert main([str(EXAMPLES / "demand.yaml"), "--quantity", "10"]) == 2
    assert "needs interval usage" in capsys.readouterr().err


def test_usage_csv_meter_column_and_demand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The meter column selects the usage stream; previous peaks feed the ratchet."""
    csv = tmp_path / "usage.csv"
    csv.write_text(
        "interval_start,quantity,meter\n"
        "2026-06-01T00:00:00Z,30,default\n"
        "2026-06-01T00:15:00Z,5,default\n"
    )
    args = [
        str(EXAMPLES / "demand.yaml"),
        "--usage",
        str(csv),
        "--unit",
        "kWh",
        "--json",
        "--previous-peak",
        "150",
        "--previous-peak",
        "200",
    ]
    assert main(args) == 0
    (line,) = json.loads(capsys.readouterr().out)["lines"]
    assert (line["kind"], line["quantity"], line["amount"]) == ("ratchet", "160.000000", "2000.00")


def test_quantity_for_one_meter_leaves_other_meters_at_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--meter gives the quantity only to that meter's charges."""
    assert (
        main([str(EXAMPLES / "volume.yaml"), "--quantity", "500", "--meter", "other", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["total"] == "0.00"


def _run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main([*args, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_zero_amounts_print_as_0_00(capsys: pytest.CaptureFixture[str]) -> None:
    """No usage: the exact and rounded amounts print 0.00, never 0E-8 or 0."""
    out = _run_json([str(EXAMPLES / "graduated.yaml"), "--quantity", "0"], capsys)
    (line,) = out["lines"]
    assert (line["amount_unrounded"], line["amount"], out["total"]) == ("0.00", "0.00", "0.00")
    assert main([str(EXAMPLES / "graduated.yaml"), "--quantity", "0"]) == 0
    table = capsys.readouterr().out
    assert "0E" not in table
    assert table.count("0.00") >= 3


def test_several_meters_in_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two CSV files are two meters: each has its lines and total, plus a grand total."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("interval_start,quantity\n2026-04-02T12:00:00+02:00,1000\n")
    b.write_text("interval_start,quantity\n2026-04-02T12:00:00+02:00,3000\n")
    period = ["--period-start", "2026-04-01T00:00+02:00", "--period-end", "2026-05-01T00:00+02:00"]
    args = [str(EXAMPLES / "time_of_use.yaml"), "--usage", str(a), "--usage", str(b)]
    out = _run_json([*args, "--unit", "Wh", *period], capsys)
    assert [(m["usage"], m["total"]) for m in out["meters"]] == [(str(a), "0.32"), (str(b), "0.96")]
    assert out["total"] == "1.28"


def test_at_prints_the_period_and_prices_in_force(capsys: pytest.CaptureFixture[str]) -> None:
    """Thursday 2 April 2026 12:00 in Berlin is summer peak (0.32); Good Friday is off-peak."""
    plan = str(EXAMPLES / "time_of_use.yaml")
    out = _run_json([plan, "--at", "2026-04-02T12:00+02:00"], capsys)
    assert (out["period"], out["prices"]) == (
        "peak",
        [{"charge": "energy", "price": "peak per kWh", "amount": "0.32"}],
    )
    assert _run_json([plan, "--at", "2026-04-03T12:00+02:00"], capsys)["period"] == "offpeak"


def test_per_period_demand_lines_are_kind_demand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The on-peak demand line of a demand charge is a 'demand' line, like the flat one."""
    usage = tmp_path / "u.csv"
    usage.write_text("interval_start,quantity\n2026-06-03T12:00:00+02:00,100\n")
    plan = str(EXAMPLES / "business_tou_demand.yaml")
    out = _run_json([plan, "--usage", str(usage), "--unit", "Wh"], capsys)
    demand = [(li["kind"], li["period"]) for li in out["lines"] if li["charge"] == "demand"]
    assert demand == [("demand", None), ("demand", "peak")]


def test_lines_of_periods_that_never_apply_can_be_hidden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A summer-only period has no hour in January: --hide-unused-periods leaves its line out."""
    plan = tmp_path / "seasonal.yaml"
    plan.write_text(
        "format: tally.plan/v1\nid: s\nversion: 1\ncurrency: EUR\ntime_zone: UTC\n"
        "schedule:\n  seasons:\n"
        "    summer: {months: [6, 7, 8], weekday: {'0-24': summer}, weekend: {'0-24': summer}}\n"
        "    rest: {months: [1, 2, 3, 4, 5, 9, 10, 11, 12], weekday: {'0-24': base},"
        " weekend: {'0-24': base}}\n"
        "charges:\n  - type: time_of_use\n    id: e\n    unit: kWh\n"
        "    periods: {summer: {price: '0.40'}, base: {price: '0.20'}}\n"
    )
    usage = tmp_path / "u.csv"
    usage.write_text("interval_start,quantity\n2026-01-05T10:00:00Z,2\n")
    args = [str(plan), "--usage", str(usage), "--unit", "kWh"]
    jan = ["--period-start", "2026-01-01T00:00Z", "--period-end", "2026-02-01T00:00Z"]
    assert [li["period"] for li in _run_json([*args, *jan], capsys)["lines"]] == ["base", "summer"]
    hidden = _run_json([*args, *jan, "--hide-unused-periods"], capsys)
    assert [li["period"] for li in hidden["lines"]] == ["base"]


def test_at_prints_net_metering_import_and_export_prices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--at lists a net metering charge's import price and export credit of the period."""
    plan = tmp_path / "nm.yaml"
    plan.write_text(
        "format: tally.plan/v1\nid: nm\nversion: 1\ncurrency: EUR\ntime_zone: UTC\n"
        "schedule:\n  seasons:\n"
        "    all: {months: [1,2,3,4,5,6,7,8,9,10,11,12], weekday: {'0-7': low, '7-24': normal},"
        " weekend: {'0-24': low}}\n"
        "charges:\n  - {type: net_metering, id: e, unit: kWh, mode: net,"
        " import_price: {low: '0.22', normal: '0.28'},"
        " export_price: {low: '0.05', normal: '0.08'}}\n"
    )
    out = _run_json([str(plan), "--at", "2026-06-03T12:00Z"], capsys)
    assert out["period"] == "normal"
    assert [(p["price"], p["amount"]) for p in out["prices"]] == [
        ("normal import per kWh", "0.28"),
        ("normal export credit per kWh", "0.08"),
    ]
