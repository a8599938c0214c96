"""Invoice number format."""

from __future__ import annotations

import pytest

from collector.billing.numbering import format_invoice_number
from collector.errors import ValidationFailed


def test_number_is_prefix_year_and_six_digits() -> None:
    """Numbers read PREFIX-YYYY-000123."""
    assert format_invoice_number("INV", 2026, 123) == "INV-2026-000123"


@pytest.mark.parametrize(("prefix", "value"), [("inv", 1), ("INV-", 1), ("INV", 0)])
def test_bad_prefix_or_value_is_rejected(prefix: str, value: int) -> None:
    """Lower-case prefixes, dashes and non-positive values are refused."""
    with pytest.raises(ValidationFailed):
        format_invoice_number(prefix, 2026, value)
