"""The notification loop the collector runner starts: delivers webhooks every ``poll_s``,
checks alert rules and offline devices every ``check_s``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from collector.alerts.evaluate import evaluate_alerts
from collector.errors import CollectorError
from collector.storage import webhook_store
from collector.storage.database import Pool, translate_errors
from collector.webhooks.delivery import DeliverySettings, DeliveryWorker
from collector.webhooks.events import EventSink, EventType
from collector.webhooks.outbox import OutboxSink

__all__ = ["LoopSettings", "NotificationLoop", "announce_offline_devices"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopSettings:
    poll_s: float = 1.0
    check_s: float = 60.0
    offline_after_s: float = 3600.0
    delivery: DeliverySettings = field(default_factory=DeliverySettings)


def announce_offline_devices(
    pool: Pool, now: datetime, offline_after_s: float, sink: EventSink
) -> int:
    """Emit ``device.offline`` once per silence of each device quiet for ``offline_after_s``."""
    with pool.connection() as conn, conn.transaction():
        found = webhook_store.offline_devices(conn, now - timedelta(seconds=offline_after_s), now)
        for device_id, last_seen in found:
            sink.emit(
                conn,
                EventType.DEVICE_OFFLINE,
                {"device_id": device_id, "last_seen": last_seen.isoformat(),
                 "silent_for_s": (now - last_seen).total_seconds()},
                at=now,
            )
    return len(found)


class NotificationLoop:
    """Owns its HTTP client; ``run`` until ``stop`` is set. Errors are logged and retried."""

    def __init__(
        self, pool: Pool, clock: Callable[[], datetime], settings: LoopSettings | None = None
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._settings = settings or LoopSettings()
        self._sink = OutboxSink()

    def run(self, stop: threading.Event) -> None:
        s = self._settings
        next_check = 0.0
        with httpx.Client(follow_redirects=False) as client:
            worker = DeliveryWorker(self._pool, client, self._clock, s.delivery)
            while not stop.is_set():
                try:
                    # a pool timeout or a dropped connection while the database is away is
                    # a StorageUnavailable like any other: retried, never the thread's end
                    with translate_errors("notification loop"):
                        now = self._clock()
                        if now.timestamp() >= next_check:
                            evaluate_alerts(self._pool, now, self._sink)
                            announce_offline_devices(self._pool, now, s.offline_after_s,
                                                     self._sink)
                            next_check = now.timestamp() + s.check_s
                        worker.drain(max_rounds=10)
                except CollectorError as exc:
                    _log.warning("notification loop failed (will retry): %s", exc)
                stop.wait(s.poll_s)
