"""Exceptions raised by the collector package.

    CollectorError
    ├── ConfigError(ValueError)      invalid collector configuration
    ├── StorageError                 the database failed (psycopg errors are translated once,
    │   │                            in collector.storage, with ``raise ... from exc``)
    │   ├── StorageUnavailable       the database cannot be reached right now (retry later)
    │   │   └── StorageConflict      the database aborted the transaction to break a deadlock
    │   │                            (or a serialization conflict): retry it
    │   └── ValueRefused(ValueError) the database refused a value (out of range, NUL byte…)
    ├── MigrationError               a schema migration failed or the schema is newer than the code
    ├── PlanError(ValueError)        a price plan is invalid (has .path, where in the plan)
    ├── RatingError(ValueError)      usage cannot be rated on a plan (unit mismatch, …)
    ├── UsageError(ValueError)       readings cannot be turned into usage
    ├── ReconcileError(ValueError)   a device's status counters cannot be read (reconcile)
    ├── AnalyticsError(ValueError)   an analytics question cannot be answered (bad scope, window…)
    ├── NotificationError(ValueError) an alert rule or webhook endpoint is invalid
    ├── BillingError                 a billing operation is not allowed
    │   ├── NotFound(LookupError)    a customer, plan, subscription or invoice does not exist
    │   ├── Conflict                 the request conflicts with current state (immutable invoice…)
    │   │   └── NotReady             finalize before the period end + grace window (has .ready_at)
    │   └── ValidationFailed(ValueError)
    ├── AccessError                  staff access (keys, roles) refused or malformed
    │   ├── InvalidKey(ValueError)   not a well-formed staff key, or a bad key request
    │   └── UnknownKey(LookupError)  no such staff key
    └── DeviceError                  device identity (collector.devices)
        ├── EnrollmentRefused            a code was refused (has .kind: expired, used, …)
        ├── DeviceNotFound(LookupError)
        ├── DeviceStateError             lifecycle state forbids it (decommissioned device…)
        ├── InvalidDeviceRequest(ValueError)
        └── BrokerAccessError            the broker refused a dynamic-security command

Ingest errors for single messages are not exceptions that escape: a bad message becomes a
dead letter (``agent.errors.ProtocolError`` carries its reason).
"""

from __future__ import annotations

from datetime import datetime


class CollectorError(Exception):
    """Base class of every error the collector raises."""


class ConfigError(CollectorError, ValueError):
    """The collector configuration is invalid."""


class StorageError(CollectorError):
    """A database operation failed."""


class StorageUnavailable(StorageError):
    """The database cannot be reached; the operation may be retried later."""


class StorageConflict(StorageUnavailable):
    """The database aborted the transaction as a deadlock victim (or on a serialization
    conflict); nothing of it was kept and running it again is safe."""


class ValueRefused(StorageError, ValueError):
    """The database refused a value of the request (a backstop: the API validates first)."""


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


class AnalyticsError(CollectorError, ValueError):
    """An analytics question cannot be answered as asked (unknown scope, mixed units, …)."""


class NotificationError(CollectorError, ValueError):
    """An alert rule or webhook endpoint is invalid."""


class BillingError(CollectorError):
    """A billing operation is not allowed."""


class NotFound(BillingError, LookupError):
    """The requested object does not exist."""


class Conflict(BillingError):
    """The request conflicts with the current state."""


class NotReady(Conflict):
    """An invoice or period may not be finalized yet (its period + grace window has not passed)."""

    def __init__(self, message: str, *, ready_at: datetime) -> None:
        super().__init__(message)
        self.ready_at = ready_at


class ValidationFailed(BillingError, ValueError):
    """The request is invalid."""


class AccessError(CollectorError):
    """Staff access was refused or a key request is malformed."""


class InvalidKey(AccessError, ValueError):
    """Not a well-formed staff key, or an invalid request for one."""


class UnknownKey(AccessError, LookupError):
    """No staff key with that id."""


class DeviceError(CollectorError):
    """A device identity operation failed (enrollment, broker access, lifecycle)."""


class EnrollmentRefused(DeviceError):
    """An enrollment code was refused; ``kind`` says why (malformed, unknown, expired, used,
    rate_limited, secret)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class DeviceNotFound(DeviceError, LookupError):
    """No such device or enrollment."""


class DeviceStateError(DeviceError):
    """The device's lifecycle state does not allow the operation (e.g. already decommissioned)."""


class InvalidDeviceRequest(DeviceError, ValueError):
    """A device or enrollment request is invalid (bad meter configuration, expiry, …)."""


class BrokerAccessError(DeviceError):
    """The broker refused or did not answer a dynamic-security command (has ``.command``)."""

    def __init__(self, message: str, *, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class ReconcileError(CollectorError, ValueError):
    """A device's status counters cannot be read for reconciliation."""
