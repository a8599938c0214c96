"""The finalize guard (pure): an invoice may be finalized only once its period has ended plus
the grace window, unless staff force it with a reason that is recorded on the invoice.

    ready_at = period_end + grace
    now <  ready_at, no reason  → NotReady (the API answers 409, the CLI exits 2)
    now <  ready_at, reason     → finalized; the reason is stored as ``forced_reason``
    now >= ready_at             → finalized
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.errors import NotReady, ValidationFailed

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class ForceReason:
    """Why staff finalize before the grace window has passed (kept on the invoice)."""

    text: str

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValidationFailed("forcing a finalize needs a reason (non-empty text)")
        if len(self.text) > MAX_REASON:
            raise ValidationFailed(f"the force reason is longer than {MAX_REASON} characters")


def force_reason(force: bool, reason: str | None) -> ForceReason | None:
    """The validated reason of a forced finalize; None when not forced.

    ``force`` without a reason is refused, and so is a reason without ``force`` (a reason that
    is not used would be a silent mistake)."""
    if not force:
        if reason is not None:
            raise ValidationFailed("a reason is only taken together with force")
        return None
    return ForceReason(reason or "")


def ready_at(period_end: datetime, grace: timedelta) -> datetime:
    """The first instant at which an invoice of a period ending at ``period_end`` may be final."""
    if period_end.utcoffset() is None:
        raise ValidationFailed("period_end must be timezone-aware")
    return period_end + grace


def check_ready(
    what: str,
    period_end: datetime,
    now: datetime,
    grace: timedelta,
    forced: ForceReason | None,
) -> None:
    """Raise ``NotReady`` when ``what`` (e.g. "invoice 42 (2026-12)") may not be finalized yet."""
    when = ready_at(period_end, grace)
    if now < when and forced is None:
        raise NotReady(
            f"{what} cannot be finalized before {when.isoformat()}: its period ends"
            f" {period_end.isoformat()} and the grace window is {_hours(grace)} h;"
            " force it with a reason to finalize earlier",
            ready_at=when,
        )


def _hours(grace: timedelta) -> str:
    h = grace.total_seconds() / 3600
    return str(int(h)) if h == int(h) else f"{h:g}"
