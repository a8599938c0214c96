"""The audit trail: one entry per state-changing call (who, what, when, outcome)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["AuditEntry", "Outcome", "outcome_of"]

Outcome = Literal["ok", "refused", "rejected", "failed"]


def outcome_of(status: int) -> Outcome:
    """``ok`` (< 400), ``refused`` (401/403: not allowed), ``rejected`` (other 4xx: bad request),
    ``failed`` (5xx)."""
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "refused"
    if status < 500:
        return "rejected"
    return "failed"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded call. ``actor`` is ``key:<id>``, ``token:<digest prefix>``, ``open``,
    ``cli``, ``customer`` or ``anonymous``; ``target`` is what the call changed when the route
    says so (e.g. ``key:<id>``)."""

    at: datetime
    actor: str
    role: str | None
    method: str
    path: str
    status: int
    client: str | None = None
    target: str | None = None
    id: int | None = None

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.status)
