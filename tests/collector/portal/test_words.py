"""The portal's words and formats: every language has every word; the browser's language picks
the sign-in page's; figures follow the customer's locale."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from collector.portal.locale_format import LocalFormat
from collector.portal.words import LANGUAGES, pick_language


def test_every_language_has_every_word() -> None:
    """No key falls back to English silently."""
    keys = set(LANGUAGES["en"])
    for lang, table in LANGUAGES.items():
        assert set(table) == keys, lang


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("nl-NL,nl;q=0.9,en;q=0.8", "nl"),
        ("es-ES,es;q=0.9,de;q=0.5,fr;q=0.7", "fr"),
        ("ja", "en"),
        (None, "en"),
        ("de;q=bad,en", "en"),
    ],
)
def test_pick_language(header: str | None, lang: str) -> None:
    assert pick_language(header) == lang


def test_figures_follow_the_locale() -> None:
    """Money from the stored Decimal, quantities with the locale's separators, hours with
    their offset on the night clocks go back."""
    nl = LocalFormat("nl", "Europe/Amsterdam")
    en = LocalFormat("en", "Europe/Amsterdam")
    assert nl.money(Decimal("1234.56"), "EUR") == "€\xa01.234,56"
    assert en.money(Decimal("1234.56"), "EUR") == "€1,234.56"
    assert nl.quantity(1234.5, "kWh") == "1.234,50 kWh"
    first = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    second = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 CET
    assert en.hour(first) == "02:00 +02:00"
    assert en.hour(second) == "02:00 +01:00"


def test_sign_in_page_speaks_the_browsers_language(client: TestClient) -> None:
    """Before sign-in the customer is unknown: the browser's Accept-Language decides."""
    r = client.get("/portal/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de">' in r.text
    assert "Anmelden" in r.text
    refused = client.post("/portal/login", data={"code": "nope"}, headers={"Accept-Language": "fr"})
    assert refused.status_code == 401
    assert "déjà été utilisé" in refused.text
