"""Composition root of the collector process: pool, store, writer, MQTT consumer, API, signals.

Nothing here decides *how* to ingest; it builds the pieces from the configuration, starts their
threads and stops them in the right order: on SIGTERM/SIGINT the consumer stops taking new
work, the writer finishes its current flush and acknowledges it, then the MQTT session is
closed and the pool released.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

import uvicorn

from agent.clock import Clock, SystemClock
from collector.api.app import create_app
from collector.api.ingest_routes import IngestProbe
from collector.config import CollectorConfig
from collector.devices.wiring import build_device_service
from collector.errors import ConfigError, StorageError
from collector.ingest.decoders import DecoderTable
from collector.ingest.messages import FlushOutcome, InboundMessage, OutboundAck
from collector.ingest.mqtt_consumer import MqttConsumer, MqttSettings
from collector.ingest.senml import senml_decoder
from collector.ingest.writer import IngestWriter, WriterSettings
from collector.storage.database import Pool, open_pool
from collector.storage.ingest_store import ReadingStore
from collector.storage.migrate import migrate
from collector.storage.partitions import ensure_reading_partitions
from collector.upkeep import UpkeepTracker
from collector.usage_refresh import RefreshSettings, UsageRefresher
from collector.webhooks.delivery import DeliverySettings
from collector.webhooks.loop import LoopSettings, NotificationLoop

__all__ = ["Collector", "migrate_from_config", "run_api", "run_collector"]

_log = logging.getLogger(__name__)


def migrate_from_config(config: CollectorConfig) -> list[str]:
    flavour = config.database.timescale
    use_ts = None if flavour == "auto" else flavour == "yes"
    return migrate(config.database.url, use_timescale=use_ts)


def default_decoders(config: CollectorConfig) -> DecoderTable:
    """Tally v1 batches, plus SenML packs when a SenML topic is configured."""
    table = DecoderTable()
    if config.mqtt.senml_topic:
        table = table.with_decoder(config.mqtt.senml_topic, senml_decoder)
    return table


def mqtt_settings(config: CollectorConfig) -> MqttSettings:
    ep = config.mqtt.endpoint()
    return MqttSettings(
        host=ep.host,
        port=ep.port,
        client_id=config.mqtt.client_id,
        username=ep.username,
        password=ep.password,
        tls=ep.tls,
        keepalive_s=config.mqtt.keepalive_s,
        topics=config.mqtt.subscriptions(),
        qos=config.mqtt.qos,
        reconnect_min_s=config.mqtt.reconnect_min_s,
        reconnect_max_s=max(config.mqtt.reconnect_max_s, config.mqtt.reconnect_min_s),
    )


def writer_settings(config: CollectorConfig) -> WriterSettings:
    i = config.ingest
    return WriterSettings(
        max_messages=i.max_messages,
        max_wait_s=i.max_wait_ms / 1000,
        idle_s=i.idle_ms / 1000,
        retry_initial_s=i.retry_initial_s,
        retry_max_s=max(i.retry_max_s, i.retry_initial_s),
    )


def refresh_settings(config: CollectorConfig) -> RefreshSettings:
    i = config.ingest
    return RefreshSettings(
        poll_s=i.usage_refresh_s or 1.0, min_gap_s=i.usage_refresh_gap_s,
        limit=i.usage_refresh_limit, max_readings=i.usage_refresh_max_readings,
        owner_role=config.database.owner_role,
    )


@dataclass(frozen=True, slots=True)
class _Threads:
    writer: threading.Thread
    partitions: threading.Thread
    usage: threading.Thread | None


class Collector:
    """The ingest side of the process: consumer → writer → store, plus partition upkeep."""

    def __init__(
        self,
        config: CollectorConfig,
        pool: Pool,
        *,
        clock: Clock | None = None,
        decoders: DecoderTable | None = None,
        upkeep: UpkeepTracker | None = None,
    ) -> None:
        if decoders is None:
            decoders = default_decoders(config)
        self._config = config
        self._clock = clock or SystemClock()
        self._pool = pool
        self._stop = threading.Event()
        self.upkeep = upkeep or UpkeepTracker()
        self.refresher: UsageRefresher | None = None
        self._wake_on_commit = config.ingest.usage_refresh_on_commit
        if config.ingest.usage_refresh_s > 0:
            self.refresher = UsageRefresher(
                pool, self._clock, self.upkeep, refresh_settings(config),
                ingest_behind=self._ingest_behind,
            )
        self.store = ReadingStore(pool, registered_only=not config.devices.accept_unregistered)
        self.writer = IngestWriter(
            self.store, self, self._clock, decoders=decoders, settings=writer_settings(config),
            on_stored=self._stored,
        )
        self.consumer = MqttConsumer(mqtt_settings(config), self.writer.submit, self._clock)
        self._threads: _Threads | None = None

    def start(self) -> None:
        self._threads = _Threads(
            threading.Thread(target=self.writer.run, args=(self._stop,), name="ingest-writer"),
            threading.Thread(target=self._partitions, name="partitions", daemon=True),
            threading.Thread(target=self.refresher.run, args=(self._stop,),
                             name="usage-refresh", daemon=True)
            if self.refresher is not None
            else None,
        )
        self._threads.writer.start()
        self._threads.partitions.start()
        if self._threads.usage is not None:
            self._threads.usage.start()
        self.consumer.start()

    def _ingest_behind(self) -> bool:
        """More messages wait than one flush takes: ingest is saturated."""
        return self.writer.stats().pending > self._config.ingest.max_messages

    def _stored(self, outcome: FlushOutcome) -> None:
        """After a flush's COMMIT: new readings wake the usage refresh."""
        if outcome.readings and self.refresher is not None and self._wake_on_commit:
            self.refresher.wake()

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        """The writer's ``Acknowledger``: PUBACKs go out through the consumer."""
        self.consumer.ack(messages)

    def confirm(self, acks: Sequence[OutboundAck]) -> None:
        """End-to-end acknowledgements go out through the consumer too."""
        self.consumer.confirm(acks)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the current flush, acknowledge it, disconnect."""
        self._stop.set()
        if self.refresher is not None:
            self.refresher.wake()  # ends its wait
        if self._threads is not None:
            self._threads.writer.join(timeout_s)
        self.consumer.stop()

    def probe(self) -> IngestProbe:
        st = self.writer.stats()
        now_ms = int(self._clock.now().timestamp() * 1000)
        lag = (now_ms - st.oldest_pending_ms) / 1000 if st.oldest_pending_ms else 0.0
        last = None
        if st.last_flush_ms is not None:
            last = datetime.fromtimestamp(st.last_flush_ms / 1000, UTC)
        return IngestProbe(
            connected=self.consumer.connected, pending=st.pending, lag_s=max(lag, 0.0),
            last_flush_at=last, storage_ok=st.storage_ok, batches=st.batches,
            readings=st.readings, dead_letters=st.dead_letters,
            flushes=st.flushes, flush_seconds_total=st.flush_seconds_total,
            flush_retries=st.retries, deadlock_retries=st.deadlock_retries,
            usage_refresh=self.refresher.stats() if self.refresher is not None else None,
        )

    def _partitions(self) -> None:
        while not self._stop.is_set():
            try:
                created = ensure_reading_partitions(self._pool, self._clock.now())
                if created:
                    _log.info("created %d readings partitions", created)
                wait = self._config.ingest.partition_check_s
                self.upkeep.succeeded("partitions", self._clock.now())
            except StorageError as exc:
                _log.warning("partition upkeep failed (will retry): %s", exc)
                self.upkeep.failed("partitions", self._clock.now(), str(exc))
                wait = 60.0
            self._stop.wait(wait)


def _api_server(
    app_config: CollectorConfig, pool: Pool, collector: Collector | None
) -> uvicorn.Server:
    api = app_config.api
    if not api.staff_tokens and not api.require_staff_key and not api.is_loopback():
        raise ConfigError(
            f"refusing to serve the staff API on {api.host} without staff tokens: set "
            "api.require_staff_key (TALLY_API_REQUIRE_STAFF_KEY=true; make keys with "
            "`tally-collector keys create`) or api.staff_tokens, or listen on 127.0.0.1"
        )
    app = create_app(
        pool, ingest_probe=collector.probe if collector else None,
        staff_tokens=api.staff_tokens or None,
        require_staff_key=api.require_staff_key,
        key_cache_s=api.key_cache_s,
        max_body_bytes=api.max_body_bytes,
        upkeep=collector.upkeep if collector else None,
    )
    app.state.devices = build_device_service(app_config.devices, pool)
    return uvicorn.Server(
        uvicorn.Config(
            app, host=app_config.api.host, port=app_config.api.port, log_level="warning",
            lifespan="off",
        )
    )


def _notification_thread(
    config: CollectorConfig, pool: Pool, stop: threading.Event
) -> threading.Thread | None:
    """Start the webhook/alert loop (``collector.webhooks.loop``) unless disabled."""
    w = config.webhooks
    if not w.enabled:
        return None
    loop = NotificationLoop(
        pool,
        SystemClock().now,
        LoopSettings(
            poll_s=w.poll_s, check_s=w.check_s, offline_after_s=w.offline_after_s,
            delivery=DeliverySettings(timeout_s=w.timeout_s),
        ),
    )
    thread = threading.Thread(target=loop.run, args=(stop,), name="notifications", daemon=True)
    thread.start()
    return thread


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        _log.info("received signal %d, stopping", signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_collector(
    config: CollectorConfig, *, with_api: bool = True, migrate_first: bool = False
) -> int:
    """Run consumer (and API) until SIGTERM/SIGINT; returns the exit status."""
    if migrate_first:
        applied = migrate_from_config(config)
        _log.info("migrations applied: %s", ", ".join(applied) or "none")
    pool = open_pool(
        config.database.url, min_size=config.database.pool_min, max_size=config.database.pool_max
    )
    collector = Collector(config, pool)
    collector.start()
    notify_stop = threading.Event()
    notify_thread = _notification_thread(config, pool, notify_stop)
    server = None
    api_thread = None
    if with_api and config.api.enabled:
        server = _api_server(config, pool, collector)
        api_thread = threading.Thread(target=server.run, name="api", daemon=True)
        api_thread.start()
    try:
        _wait_for_signal()
    finally:
        if server is not None and api_thread is not None:
            server.should_exit = True
            api_thread.join(10)
        collector.stop()
        notify_stop.set()
        if notify_thread is not None:
            notify_thread.join(10)
        pool.close()
    return 0


def run_api(config: CollectorConfig) -> int:
    """Serve only the HTTP API (no consumer)."""
    pool = open_pool(
        config.database.url, min_size=config.database.pool_min, max_size=config.database.pool_max
    )
    try:
        _api_server(config, pool, None).run()
    finally:
        pool.close()
    return 0
