"""Prepaid credits (wallets): top-ups with expiry, consumed by final invoices in a fixed order.

``ledger`` is the pure core (no I/O, time passed in); ``collector.storage.wallets_store`` keeps
wallets in PostgreSQL and ``collector.api.wallets_routes`` serves them to staff.
"""

from collector.wallets.ledger import Allocation, TopUp, Use, available, consume, expire, remaining

__all__ = ["Allocation", "TopUp", "Use", "available", "consume", "expire", "remaining"]
