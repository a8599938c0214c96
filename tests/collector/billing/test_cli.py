"""Staff CLI: ``tally-collector billing …`` through the collector's command-line entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from collector.cli import main
from tests.collector.billing.conftest import make_series, plan_doc


def _run(monkeypatch: pytest.MonkeyPatch, db: str, *argv: str) -> int:
    monkeypatch.setenv("TALLY_DATABASE_URL", db)
    return main(["billing", *argv])  # billing is in collector.cli.EXTENSION_MODULES


def test_staff_set_up_a_customer_and_close_a_month(
    db: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """customer-create, plan-create, assign, close, finalize and invoice --format csv."""
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(plan_doc()))
    sid = make_series(conn, "dev-1")
    assert (
        _run(
            monkeypatch,
            db,
            "customer-create",
            "--name",
            "Acme",
            "--line1",
            "Damrak 1",
            "--city",
            "Amsterdam",
            "--country",
            "NL",
            "--currency",
            "EUR",
            "--tz",
            "Europe/Amsterdam",
            "--tax-rate",
            "0.21",
        )
        == 0
    )
    assert _run(monkeypatch, db, "plan-create", "--code", "basic", str(plan_file)) == 0
    assert (
        _run(
            monkeypatch,
            db,
            "assign",
            "--customer",
            "1",
            "--series",
            str(sid),
            "--plan-version",
            "1",
            "--start",
            "2026-01-01T00:00+01:00",
        )
        == 0
    )
    now = ["--now", "2026-04-10T00:00+00:00", "--plain"]
    assert _run(monkeypatch, db, "close", "2026-03", *now) == 0
    assert _run(monkeypatch, db, "finalize", "2026-03", *now) == 0
    capsys.readouterr()
    assert _run(monkeypatch, db, "invoice", "1", "--format", "csv") == 0
    csv_text = capsys.readouterr().out
    assert "INV-2026-000001" in csv_text
    assert ",10.00," in csv_text  # the standing charge; no usage was recorded


def test_cli_reports_domain_errors_with_exit_status_2(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown subscription is an error message, not a traceback."""
    assert _run(monkeypatch, db, "end", "99", "--at", "2026-03-01T00:00+00:00") == 2
    assert "subscription 99 does not exist" in capsys.readouterr().err


def test_staff_configure_an_issuer_and_export_a_ubl_invoice(
    db: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """issuer-set from YAML, a reverse-charge business customer, and invoice --format ubl."""
    issuer_file = tmp_path / "issuer.yaml"
    issuer_file.write_text(
        yaml.safe_dump(
            {
                "name": "Tally Energy B.V.",
                "address": {"line1": "Keizersgracht 100", "city": "Amsterdam", "country": "NL"},
                "vat_id": "NL859123456B01",
                "iban": "NL91ABNA0417164300",
                "payment_terms_days": 30,
            }
        )
    )
    assert _run(monkeypatch, db, "issuer-set", "tally-nl", str(issuer_file)) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x"}))
    assert _run(monkeypatch, db, "issuer-set", "x", str(bad)) == 2
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(plan_doc()))
    sid = make_series(conn, "dev-1")
    assert (
        _run(
            monkeypatch,
            db,
            "customer-create",
            "--name",
            "Werk GmbH",
            "--line1",
            "Hauptstr. 1",
            "--city",
            "Berlin",
            "--country",
            "DE",
            "--currency",
            "EUR",
            "--tz",
            "Europe/Berlin",
            "--tax-rate",
            "0",
            "--issuer",
            "tally-nl",
            "--vat-id",
            "DE123456789",
            "--tax-category",
            "AE",
            "--language",
            "de",
        )
        == 0
    )
    assert _run(monkeypatch, db, "plan-create", "--code", "basic", str(plan_file)) == 0
    assert (
        _run(
            monkeypatch,
            db,
            "assign",
            "--customer",
            "1",
            "--series",
            str(sid),
            "--plan-version",
            "1",
            "--start",
            "2026-01-01T00:00+01:00",
        )
        == 0
    )
    now = ["--now", "2026-04-10T00:00+00:00", "--plain"]
    assert _run(monkeypatch, db, "close", "2026-03", *now) == 0
    assert _run(monkeypatch, db, "finalize", "2026-03", *now) == 0
    capsys.readouterr()
    assert _run(monkeypatch, db, "invoice", "1", "--format", "ubl") == 0
    ubl = capsys.readouterr().out
    assert "<cbc:ID>AE</cbc:ID>" in ubl
    assert "<cbc:CompanyID>DE123456789</cbc:CompanyID>" in ubl
    assert "<cbc:DueDate>2026-05-10</cbc:DueDate>" in ubl
