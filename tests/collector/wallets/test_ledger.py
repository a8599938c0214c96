"""The wallet ledger: consumption order, expiry, partial payment (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import ValidationFailed
from collector.wallets import Allocation, TopUp, Use, available, consume, expire

D = Decimal


def at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


TOPS = [
    TopUp(1, D("100.00"), at(1)),  # never expires
    TopUp(2, D("30.00"), at(2), at(20)),
    TopUp(3, D("50.00"), at(3), at(10)),
]


def test_credits_expiring_first_are_spent_first() -> None:
    """60.00 due on day 5: 50.00 from the top-up expiring on day 10, 10.00 from the one
    expiring on day 20; the never-expiring credits are kept."""
    assert consume(TOPS, [], D("60.00"), at(5)) == [
        Allocation(3, D("50.00")),
        Allocation(2, D("10.00")),
    ]


def test_expired_and_future_top_ups_are_not_usable() -> None:
    """On day 15 the day-10 top-up has expired; on day 1 only the first top-up exists."""
    assert available(TOPS, [], at(15)) == D("130.00")
    assert available(TOPS, [], at(1)) == D("100.00")
    assert expire(TOPS, [Use(3, D("20.00"))], at(15)) == [Allocation(3, D("30.00"))]


def test_a_large_invoice_takes_everything_usable_and_leaves_the_rest_due() -> None:
    """500.00 due with 180.00 usable: every top-up is emptied in order."""
    allocs = consume(TOPS, [Use(1, D("10.00"))], D("500.00"), at(5))
    assert allocs == [
        Allocation(3, D("50.00")),
        Allocation(2, D("30.00")),
        Allocation(1, D("90.00")),
    ]


def test_bad_top_ups_are_refused() -> None:
    """Credits must be positive and expire after they are granted, with aware times."""
    with pytest.raises(ValidationFailed):
        TopUp(1, D(0), at(1))
    with pytest.raises(ValidationFailed):
        TopUp(1, D(1), at(2), at(2))
    with pytest.raises(ValidationFailed):
        TopUp(1, D(1), datetime(2026, 1, 1))  # a naive time


@given(
    credits=st.lists(
        st.decimals(min_value="0.01", max_value=500, places=2), min_size=1, max_size=5
    ),
    due=st.decimals(min_value=0, max_value=2000, places=2),
    day=st.integers(1, 28),
)
def test_consumption_never_exceeds_what_is_due_or_usable(
    credits: list[Decimal], due: Decimal, day: int
) -> None:
    """Paid = min(due, usable credits), and no top-up gives more than it has left."""
    tops = [
        TopUp(i, c, at(1 + i), at(10 + 3 * i) if i % 2 else None) for i, c in enumerate(credits)
    ]
    allocs = consume(tops, [], due, at(day))
    paid = sum((a.amount for a in allocs), D(0))
    assert paid == min(due, available(tops, [], at(day)))
    left = {t.top_up_id: t.credits for t in tops}
    assert all(0 < a.amount <= left[a.top_up_id] for a in allocs)
