"""The wallet ledger: what is left of each top-up, and which top-ups pay an amount (pure).

A wallet holds **top-ups** (credits in the wallet's currency, 1 credit = 1 unit of money,
granted at an instant, optionally expiring). **Uses** take credits out of one top-up: an
invoice paid with credits, or an expiry. Consumption order (documented in docs/pricing.md):

1. only top-ups granted at or before the instant and not expired at it (``expires_at > at``);
2. the one expiring first goes first (never-expiring top-ups last), so that no credit expires
   while a later-expiring one was spent;
3. ties: the oldest grant first, then the lowest id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from collector.errors import ValidationFailed


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValidationFailed(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class TopUp:
    """Credits added to a wallet at ``granted_at``; unusable from ``expires_at`` on."""

    top_up_id: int
    credits: Decimal
    granted_at: datetime
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.credits.is_finite() or self.credits <= 0:
            raise ValidationFailed(f"top-up credits must be positive, got {self.credits}")
        _aware("granted_at", self.granted_at)
        _aware("expires_at", self.expires_at)
        if self.expires_at is not None and self.expires_at <= self.granted_at:
            raise ValidationFailed("a top-up must expire after it is granted")

    def usable_at(self, at: datetime) -> bool:
        """Granted by ``at`` and not yet expired."""
        return self.granted_at <= at and (self.expires_at is None or at < self.expires_at)


@dataclass(frozen=True, slots=True)
class Use:
    """Credits taken out of one top-up (by an invoice or an expiry)."""

    top_up_id: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Allocation:
    """Credits to take out of one top-up now."""

    top_up_id: int
    amount: Decimal


def remaining(top_ups: Sequence[TopUp], uses: Sequence[Use]) -> dict[int, Decimal]:
    """Credits left in each top-up (by id)."""
    left = {t.top_up_id: t.credits for t in top_ups}
    for u in uses:
        if u.top_up_id not in left:
            raise ValidationFailed(f"use of unknown top-up {u.top_up_id}")
        left[u.top_up_id] -= u.amount
    return left


def _order(t: TopUp) -> tuple[int, datetime, datetime, int]:
    never = t.expires_at is None
    return (int(never), t.expires_at or t.granted_at, t.granted_at, t.top_up_id)


def available(top_ups: Sequence[TopUp], uses: Sequence[Use], at: datetime) -> Decimal:
    """Credits usable at ``at``."""
    left = remaining(top_ups, uses)
    return sum((left[t.top_up_id] for t in top_ups if t.usable_at(at)), Decimal(0))


def consume(
    top_ups: Sequence[TopUp], uses: Sequence[Use], amount: Decimal, at: datetime
) -> list[Allocation]:
    """Allocations paying as much of ``amount`` as the usable credits allow, in order."""
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed(f"amount to pay must be non-negative, got {amount}")
    left = remaining(top_ups, uses)
    out: list[Allocation] = []
    due = amount
    for t in sorted((t for t in top_ups if t.usable_at(at)), key=_order):
        if due <= 0:
            break
        take = min(left[t.top_up_id], due)
        if take > 0:
            out.append(Allocation(t.top_up_id, take))
            due -= take
    return out


def expire(top_ups: Sequence[TopUp], uses: Sequence[Use], at: datetime) -> list[Allocation]:
    """What is left of the top-ups expired by ``at`` (to book as expiry uses)."""
    left = remaining(top_ups, uses)
    return [
        Allocation(t.top_up_id, left[t.top_up_id])
        for t in sorted(top_ups, key=_order)
        if t.expires_at is not None and t.expires_at <= at and left[t.top_up_id] > 0
    ]
