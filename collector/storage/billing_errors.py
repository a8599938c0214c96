"""Translation of psycopg errors raised by billing SQL into the collector error tree, once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pgerr

from collector.errors import (
    Conflict,
    NotFound,
    StorageError,
    StorageUnavailable,
    ValueRefused,
)

IMMUTABLE_SQLSTATE = "TL001"  # raised by the billing immutability triggers (0020_billing.sql)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a block of billing SQL; psycopg errors become Conflict/NotFound/StorageError."""
    try:
        yield
    except psycopg.Error as exc:
        if exc.sqlstate == IMMUTABLE_SQLSTATE:
            raise Conflict(f"{what}: {exc.diag.message_primary}") from exc
        if isinstance(exc, pgerr.UniqueViolation):
            raise Conflict(
                f"{what}: {exc.diag.message_detail or exc.diag.message_primary}"
            ) from exc
        if isinstance(exc, pgerr.ForeignKeyViolation):
            raise NotFound(
                f"{what}: {exc.diag.message_detail or exc.diag.message_primary}"
            ) from exc
        if isinstance(exc, pgerr.CheckViolation):
            raise Conflict(f"{what}: {exc.diag.message_primary}") from exc
        if isinstance(exc, psycopg.DataError):
            raise ValueRefused(f"{what}: {exc.diag.message_primary or exc}") from exc
        if isinstance(exc, psycopg.OperationalError):
            raise StorageUnavailable(f"{what}: {exc}") from exc
        raise StorageError(f"{what}: {exc}") from exc
