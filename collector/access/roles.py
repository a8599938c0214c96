"""Staff roles and what each may call.

``admin`` may call everything; ``billing`` the billing routes (customers, plans, subscriptions,
runs, invoices, portal tokens); ``technician`` the device and meter routes (meter settings,
meter replacements); ``read_only`` reads only. Every staff role may read. A route declares the
*least* role it needs; ``Role.grants`` says whether a held role covers it.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Role"]


class Role(StrEnum):
    ADMIN = "admin"
    BILLING = "billing"
    TECHNICIAN = "technician"
    READ_ONLY = "read_only"

    def grants(self, required: Role) -> bool:
        """Whether a key of this role may call a route that requires ``required``."""
        if self is Role.ADMIN or required is Role.READ_ONLY:
            return True
        return self is required
