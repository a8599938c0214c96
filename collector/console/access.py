"""Who on the staff may do what in the console: every decision goes through ``authorize``.

A staff member signs in with a staff key (or a configured staff token, which acts as admin) and
is given the roles of that key by ``roles_for``. Each console page and
form names the ``Action`` it needs; ``SECTIONS`` lists the console's areas with the action that
opens them, so a new area (enrollments, alerts, webhook deliveries) is one entry more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ROLE_ACTIONS", "SECTIONS", "Action", "Section", "StaffMember", "authorize", "roles_for"]


class Action(StrEnum):
    """What a console page or form does."""

    VIEW_CUSTOMERS = "view_customers"
    VIEW_PLANS = "view_plans"
    PREVIEW_PLAN = "preview_plan"
    VIEW_FLEET = "view_fleet"
    VIEW_BILLING = "view_billing"
    RUN_CLOSE = "run_close"
    FINALIZE = "finalize"
    VIEW_DEAD_LETTERS = "view_dead_letters"
    VIEW_ENROLLMENTS = "view_enrollments"
    CREATE_ENROLLMENT = "create_enrollment"
    VIEW_CONFLICTS = "view_conflicts"
    VIEW_ALERTS = "view_alerts"
    VIEW_DELIVERIES = "view_deliveries"
    REDELIVER = "redeliver"


_READ = frozenset(
    {
        Action.VIEW_CUSTOMERS,
        Action.VIEW_PLANS,
        Action.VIEW_FLEET,
        Action.VIEW_BILLING,
        Action.VIEW_DEAD_LETTERS,
        Action.VIEW_CONFLICTS,
        Action.VIEW_ALERTS,
        Action.VIEW_DELIVERIES,
    }
)
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "admin": frozenset(Action),
    "billing": _READ | {Action.PREVIEW_PLAN, Action.RUN_CLOSE, Action.FINALIZE, Action.REDELIVER},
    "technician": frozenset(
        {
            Action.VIEW_FLEET,
            Action.VIEW_DEAD_LETTERS,
            Action.VIEW_CONFLICTS,
            Action.VIEW_ENROLLMENTS,
            Action.CREATE_ENROLLMENT,
        }
    ),
    "read-only": _READ,
}


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A signed-in staff member: ``subject`` names them in logs, ``roles`` decide access."""

    subject: str
    roles: frozenset[str]


def roles_for(role: str) -> frozenset[str]:
    """The console roles of a staff key's role (``read_only`` keys are the console's
    ``read-only``)."""
    return frozenset({role.replace("_", "-")})


def authorize(member: StaffMember | None, action: Action) -> bool:
    """Whether ``member`` may do ``action``: the one place the console decides access."""
    if member is None:
        return False
    return any(action in ROLE_ACTIONS.get(role, frozenset()) for role in member.roles)


@dataclass(frozen=True, slots=True)
class Section:
    """An area of the console: its path under ``/console``, its title and the action it needs."""

    path: str
    title: str
    action: Action


SECTIONS: tuple[Section, ...] = (
    Section("/console/customers", "Customers", Action.VIEW_CUSTOMERS),
    Section("/console/plans", "Plans", Action.VIEW_PLANS),
    Section("/console/devices", "Devices and fleet health", Action.VIEW_FLEET),
    Section("/console/billing", "Period close", Action.VIEW_BILLING),
    Section("/console/dead-letters", "Dead letters", Action.VIEW_DEAD_LETTERS),
    # Pages of the sections below: collector/api/console_ops_routes.py.
    Section("/console/enrollments", "Enrollments", Action.VIEW_ENROLLMENTS),
    Section("/console/conflicts", "Batch conflicts", Action.VIEW_CONFLICTS),
    Section("/console/alerts", "Alerts", Action.VIEW_ALERTS),
    Section("/console/webhooks", "Webhook deliveries", Action.VIEW_DELIVERIES),
)
