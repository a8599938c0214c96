"""Console tests use the portal's fixtures: a migrated database, a pool and a fixed clock."""

from tests.collector.portal.conftest import clock, conn, db, pool

__all__ = ["clock", "conn", "db", "pool"]
