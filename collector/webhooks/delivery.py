"""The webhook delivery worker: claims due deliveries, signs and POSTs them, logs each attempt.

At least once, never lost: a delivery is claimed with a lease (its next attempt moved past
the lease in the claiming transaction), sent outside any transaction, and its outcome
recorded in a second one. A worker that dies between sending and recording leaves the lease
to expire and the delivery is sent again with the **same** ``webhook-id``, which receivers use
to drop duplicates (the Standard Webhooks rule). Several workers never send the same delivery
at once (``FOR UPDATE SKIP LOCKED``).

Success is any 2xx answer within ``timeout_s``; anything else is retried on the
``RetrySchedule`` and, after the last attempt, the delivery is ``failed`` (manual redelivery
puts it back). HTTP errors are translated here, once, into the attempt log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from collector.storage import webhook_store
from collector.storage.database import Pool
from collector.webhooks.backoff import RetrySchedule
from collector.webhooks.signing import signed_headers

__all__ = ["DeliverySettings", "DeliveryWorker"]


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    batch: int = 50
    lease_s: float = 120.0
    timeout_s: float = 10.0
    schedule: RetrySchedule = field(default_factory=RetrySchedule)


class DeliveryWorker:
    """Delivers due webhooks with ``client`` (an ``httpx.Client``; tests may pass one with a
    ``MockTransport``). ``clock`` schedules (due, retry times, the log); the
    ``webhook-timestamp`` is the ``wall_clock`` time of the attempt, because receivers reject
    signatures more than a few minutes from their own clock (replay protection)."""

    def __init__(
        self,
        pool: Pool,
        client: httpx.Client,
        clock: Callable[[], datetime],
        settings: DeliverySettings | None = None,
        *,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._pool = pool
        self._client = client
        self._clock = clock
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._settings = settings or DeliverySettings()

    def run_once(self) -> int:
        """Attempt every delivery due now (up to ``batch``); returns how many were attempted."""
        s = self._settings
        with self._pool.connection() as conn, conn.transaction():
            due = webhook_store.claim_due(
                conn, self._clock(), limit=s.batch, lease=timedelta(seconds=s.lease_s)
            )
        for d in due:
            self._attempt(d)
        return len(due)

    def drain(self, max_rounds: int = 1000) -> int:
        """Run until nothing is due; returns the number of attempts."""
        total = 0
        for _ in range(max_rounds):
            n = self.run_once()
            total += n
            if n == 0:
                break
        return total

    def _attempt(self, d: webhook_store.DueDelivery) -> None:
        now = self._clock()
        headers = signed_headers(d.secret, d.event_id, self._wall_clock(), d.body)
        status: int | None = None
        error: str | None = None
        tic = time.perf_counter()
        try:
            r = self._client.post(d.url, content=d.body, headers=headers,
                                  timeout=self._settings.timeout_s)
            status = r.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = (time.perf_counter() - tic) * 1000
        ok = error is None
        retry_at = None
        if not ok:
            delay = self._settings.schedule.delay_after(d.attempts + 1)
            retry_at = None if delay is None else now + timedelta(seconds=delay)
        with self._pool.connection() as conn, conn.transaction():
            webhook_store.record_attempt(
                conn, d.delivery_id, at=now, status_code=status, error=error,
                duration_ms=duration_ms, delivered=ok, retry_at=retry_at,
            )
