"""Exceptions raised by the collector package.

    CollectorError
    ├── ConfigError(ValueError)      invalid collector configuration
    ├── StorageError                 the database failed (psycopg errors are translated once,
    │   │                            in collector.storage, with ``raise ... from exc``)
    │   └── StorageUnavailable       the database cannot be reached right now (retry later)
    ├── MigrationError               a schema migration failed or the schema is newer than the code
    ├── PlanError(ValueError)        a price plan is invalid (has .path, where in the plan)
    ├── RatingError(ValueError)      usage cannot be rated on a plan (unit mismatch, …)
    ├── UsageError(ValueError)       readings cannot be turned into usage
    ├── ReconcileError(ValueError)   a device's status counters cannot be read (reconcile)
    └── BillingError                 a billing operation is not allowed
        ├── NotFound(LookupError)    a customer, plan, subscription or invoice does not exist
        ├── Conflict                 the request conflicts with current state (immutable invoice…)
        └── ValidationFailed(ValueError)

Ingest errors for single messages are not exceptions that escape: a bad message becomes a
dead letter (``agent.errors.ProtocolError`` carries its reason).
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base class of every error the collector raises."""


class ConfigError(CollectorError, ValueError):
    """The collector configuration is invalid."""


class StorageError(CollectorError):
    """A database operation failed."""


class StorageUnavailable(StorageError):
    """The database cannot be reached; the operation may be retried later."""


class MigrationError(CollectorError):
    """A schema migration failed."""


class PlanError(CollectorError, ValueError):
    """A price plan is invalid."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class RatingError(CollectorError, ValueError):
    """Usage cannot be rated on a plan."""


class UsageError(CollectorError, ValueError):
    """Readings cannot be turned into usage."""


class BillingError(CollectorError):
    """A billing operation is not allowed."""


class NotFound(BillingError, LookupError):
    """The requested object does not exist."""


class Conflict(BillingError):
    """The request conflicts with the current state."""


class ValidationFailed(BillingError, ValueError):
    """The request is invalid."""


class ReconcileError(CollectorError, ValueError):
    """A device's status counters cannot be read for reconciliation."""
