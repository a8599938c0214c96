"""Metrics fixtures: the billing fixtures (migrated database, pool, connection)."""

from tests.collector.billing.conftest import conn, db, pool

__all__ = ["conn", "db", "pool"]
