"""Connection pool construction and the one place psycopg errors become collector errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

import psycopg
import psycopg_pool
from psycopg.rows import TupleRow

from collector.errors import StorageConflict, StorageError, StorageUnavailable, ValueRefused

__all__ = ["Pool", "open_pool", "ping", "translate_errors"]

Pool: TypeAlias = psycopg_pool.ConnectionPool[psycopg.Connection[TupleRow]]
RECONNECT_DELAY_MAX_S = 0.5  # longest pause between the pool's reconnection attempts


class _QuickReconnectPool(psycopg_pool.ConnectionPool[psycopg.Connection[TupleRow]]):
    """A pool whose reconnection attempts never pause for longer than RECONNECT_DELAY_MAX_S.

    psycopg_pool doubles the pause after each failed attempt without bound (1, 2, 4 … s), so
    after an outage of a minute the database could answer for half a minute before the pool
    tried again. Capping the pause keeps the time to resume after an outage under a second
    (plus the writer's own retry pause, capped too) at the price of one connection attempt
    per half second while the database is down.
    """

    def _add_connection(self, attempt: Any, growing: bool = False) -> None:
        if attempt is not None and attempt.delay > RECONNECT_DELAY_MAX_S / attempt.DELAY_BACKOFF:
            attempt.delay = RECONNECT_DELAY_MAX_S / attempt.DELAY_BACKOFF
        super()._add_connection(attempt, growing)


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Re-raise psycopg/pool errors as ``StorageUnavailable`` (retry later; ``StorageConflict``
    for a transaction aborted by a deadlock or serialization conflict) or ``StorageError``."""
    try:
        yield
    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
        raise StorageConflict(f"{action}: transaction aborted by the database"
                              f" ({exc.diag.sqlstate}: {exc.diag.message_primary or exc})"
                              ) from exc
    except psycopg_pool.PoolTimeout as exc:
        raise StorageUnavailable(f"{action}: no database connection available ({exc})") from exc
    except (psycopg.OperationalError, psycopg_pool.PoolClosed) as exc:
        raise StorageUnavailable(f"{action}: database unavailable ({exc})") from exc
    except psycopg.DataError as exc:
        raise ValueRefused(f"{action}: {exc.diag.message_primary or exc}") from exc
    except psycopg.Error as exc:
        raise StorageError(f"{action}: {type(exc).__name__}: {exc}") from exc


def open_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    timeout_s: float = 5.0,
    connect_timeout_s: int = 5,
    name: str = "tally",
) -> Pool:
    """A pool that opens in the background, so the collector starts while the DB is down."""
    pool: Pool = _QuickReconnectPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        open=False,
        name=name,
        check=psycopg_pool.ConnectionPool.check_connection,
        reconnect_timeout=24 * 3600.0,
        kwargs={
            "connect_timeout": connect_timeout_s,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "application_name": name,
        },
    )
    pool.open(wait=False)
    return pool


def ping(pool: Pool, *, timeout_s: float = 2.0) -> bool:
    """True when a pooled connection answers ``SELECT 1`` within the timeout."""
    try:
        with translate_errors("ping"), pool.connection(timeout=timeout_s) as conn:
            conn.execute("SELECT 1")
    except StorageError:
        return False
    return True
