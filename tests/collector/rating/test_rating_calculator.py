"""The tally-price calculator CLI."""

from __future__ import annotations

import json
from pathlib import Path

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
