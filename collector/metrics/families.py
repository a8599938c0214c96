"""The metric families, read at scrape time from the ingest probe and the database.

No module-level registry: ``metrics_registry`` builds a ``CollectorRegistry`` holding one
``TallyMetrics`` collector, created by the API's composition root. Every scrape reads the
writer's counters (in memory) and runs one set of cheap aggregate queries.

Metrics (gauges unless a counter is said):

* ``tally_ingest_batches_total``, ``tally_ingest_readings_total`` (counters): stored since
  start; their rate is the ingest rate.
* ``tally_ingest_flushes_total``, ``tally_ingest_flush_seconds_total`` (counters): flushes
  and time spent storing them; the ratio of their rates is the mean flush latency.
* ``tally_ingest_flush_retries_total`` (counter): flushes tried again after the database was
  unavailable or aborted the transaction; ``tally_ingest_deadlock_retries_total`` (counter): of
  those, the ones PostgreSQL aborted to break a deadlock (or a serialization conflict), which
  flushes are written not to cause (docs/operations.md, "Scaling out").
* ``tally_ingest_unacknowledged_messages``, ``tally_ingest_lag_seconds`` (age of the oldest),
  ``tally_ingest_connected``, ``tally_storage_ok`` (1/0).
* ``tally_dead_letters{reason}``: dead letters kept, by reason (first 60 characters).
* ``tally_usage_refresh_pending_ranges``, ``tally_usage_refresh_lag_seconds`` (age of the
  oldest range waiting).
* ``tally_usage_refresh_passes_total``, ``tally_usage_refresh_seconds_total`` (counters),
  ``tally_usage_refresh_freshness_seconds`` (histogram: per pass, commit → visible of the
  oldest range it derived), when this process runs the usage refresh.
* ``tally_billing_run_customers_done{period,kind}`` and ``..._total``: run progress.
* ``tally_webhook_backlog``, ``tally_webhook_oldest_seconds``, ``tally_webhook_failed``.
* ``tally_upkeep_failing{task}`` (1 after 3 failures in a row), ``tally_upkeep_consecutive_failures
  {task}``, ``tally_upkeep_failures_total{task}`` (counter): the collector's background tasks
  (usage refresh, TimescaleDB rollups, partitions), from :class:`collector.upkeep.UpkeepTracker`.
* ``tally_timescale_job_failing{job_id,job,hypertable}`` (last run failed),
  ``tally_timescale_job_overdue{...}`` (next start over an hour ago, or chunks behind),
  ``tally_timescale_job_chunks_behind{...}`` (chunks a compression policy should have compressed),
  ``tally_timescale_job_failures_total{...}`` (counter): TimescaleDB's own jobs, such as the
  compression policy (none on plain PostgreSQL).
* ``tally_metrics_database_up``: 0 when the database part of the scrape failed.
* ``process_resident_memory_bytes``, ``process_cpu_seconds_total`` and the other ``process_*``
  families of prometheus-client's process collector (Linux): the collector's own memory and
  CPU, the figures its soak benchmark watches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from collector.api.ingest_routes import IngestProbe
from collector.errors import StorageError
from collector.storage.database import Pool
from collector.storage.metrics_queries import database_figures
from collector.storage.operations_jobs import JobHealth, job_health
from collector.upkeep import UpkeepTracker
from collector.usage_refresh import FRESHNESS_BUCKETS_S, RefreshStats

__all__ = ["TallyMetrics", "job_families", "metrics_registry"]


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class TallyMetrics(Collector):
    """Collects the collector's figures at scrape time."""

    def __init__(self, pool: Pool, probe: Callable[[], IngestProbe] | None,
                 upkeep: UpkeepTracker | None = None) -> None:
        self._pool = pool
        self._probe = probe
        self._upkeep = upkeep

    def collect(self) -> Iterator[Metric]:
        if self._probe is not None:
            p = self._probe()
            yield CounterMetricFamily(
                "tally_ingest_batches", "Batches stored since start", value=p.batches
            )
            yield CounterMetricFamily(
                "tally_ingest_readings", "Readings stored since start", value=p.readings
            )
            yield CounterMetricFamily(
                "tally_ingest_flushes", "Flushes stored since start", value=p.flushes
            )
            yield CounterMetricFamily(
                "tally_ingest_flush_seconds", "Time spent storing flushes",
                value=p.flush_seconds_total,
            )
            yield CounterMetricFamily(
                "tally_ingest_flush_retries",
                "Flushes tried again (database unavailable or transaction aborted)",
                value=p.flush_retries,
            )
            yield CounterMetricFamily(
                "tally_ingest_deadlock_retries",
                "Flushes the database aborted to break a deadlock, tried again",
                value=p.deadlock_retries,
            )
            yield _gauge("tally_ingest_unacknowledged_messages",
                         "Messages received and not yet acknowledged", p.pending)
            yield _gauge("tally_ingest_lag_seconds",
                         "Age of the oldest unacknowledged message", p.lag_s)
            yield _gauge("tally_ingest_connected", "1 when connected to the broker",
                         float(p.connected))
            yield _gauge("tally_storage_ok", "1 when the last flush reached the database",
                         float(p.storage_ok))
            if p.usage_refresh is not None:
                yield from _refresh(p.usage_refresh)
        yield from self._tasks()
        yield from self._database()

    def _tasks(self) -> Iterator[Metric]:
        if self._upkeep is None:
            return
        labels = ["task"]
        failing = GaugeMetricFamily("tally_upkeep_failing",
                                    "1 when a background task failed 3 times in a row",
                                    labels=labels)
        streak = GaugeMetricFamily("tally_upkeep_consecutive_failures",
                                   "Failures in a row of a background task", labels=labels)
        total = CounterMetricFamily("tally_upkeep_failures",
                                    "Failed runs of a background task since start", labels=labels)
        for t in self._upkeep.snapshot():
            failing.add_metric([t.task], float(t.failing))
            streak.add_metric([t.task], t.consecutive_failures)
            total.add_metric([t.task], t.failures)
        yield failing
        yield streak
        yield total

    def _database(self) -> Iterator[Metric]:
        try:
            with self._pool.connection(timeout=2.0) as conn:
                f = database_figures(conn)
                jobs = job_health(conn)
        except StorageError:
            yield _gauge("tally_metrics_database_up", "1 when the database figures were read", 0)
            return
        yield _gauge("tally_metrics_database_up", "1 when the database figures were read", 1)
        dl = GaugeMetricFamily("tally_dead_letters", "Dead letters kept, by reason",
                               labels=["reason"])
        for reason, n in f.dead_letters_by_reason.items():
            dl.add_metric([reason], n)
        yield dl
        yield _gauge("tally_usage_refresh_pending_ranges",
                     "Ranges waiting for the usage refresh", f.usage_dirty_rows)
        yield _gauge("tally_usage_refresh_lag_seconds",
                     "Age of the oldest range waiting for the usage refresh",
                     f.usage_refresh_lag_s)
        done = GaugeMetricFamily("tally_billing_run_customers_done",
                                 "Customers done by billing runs in progress",
                                 labels=["period", "kind"])
        total = GaugeMetricFamily("tally_billing_run_customers_total",
                                  "Customers of billing runs in progress",
                                  labels=["period", "kind"])
        for period, kind, d, t in f.runs:
            done.add_metric([period, kind], d)
            total.add_metric([period, kind], t)
        yield done
        yield total
        yield _gauge("tally_webhook_backlog", "Webhook deliveries pending", f.webhook_pending)
        yield _gauge("tally_webhook_oldest_seconds", "Age of the oldest pending webhook event",
                     f.webhook_oldest_s)
        yield _gauge("tally_webhook_failed", "Webhook deliveries that gave up", f.webhook_failed)
        yield from job_families(jobs)


def _refresh(r: RefreshStats) -> Iterator[Metric]:
    yield CounterMetricFamily("tally_usage_refresh_passes", "Usage refresh passes done",
                              value=r.passes)
    yield CounterMetricFamily("tally_usage_refresh_seconds", "Time spent in usage refresh passes",
                              value=r.seconds_total)
    buckets = [(f"{le:g}", n) for le, n in zip(FRESHNESS_BUCKETS_S, r.freshness_counts,
                                                strict=False)]
    yield HistogramMetricFamily(
        "tally_usage_refresh_freshness_seconds",
        "Per usage refresh pass: seconds from the commit of its oldest range to its own commit",
        buckets=[*buckets, ("+Inf", r.freshness_counts[-1])], sum_value=r.freshness_sum,
    )


def job_families(jobs: list[JobHealth]) -> Iterator[Metric]:
    """Gauges (failing, overdue) and a failure counter per TimescaleDB job."""
    labels = ["job_id", "job", "hypertable"]
    failing = GaugeMetricFamily("tally_timescale_job_failing",
                                "1 when the last run of a TimescaleDB job failed", labels=labels)
    overdue = GaugeMetricFamily("tally_timescale_job_overdue",
                                "1 when a TimescaleDB job's next start is over an hour past",
                                labels=labels)
    failures = CounterMetricFamily("tally_timescale_job_failures",
                                   "Failed runs of a TimescaleDB job", labels=labels)
    behind = GaugeMetricFamily("tally_timescale_job_chunks_behind",
                               "Chunks a compression policy should have compressed by now",
                               labels=labels)
    for j in jobs:
        key = [str(j.job_id), j.name, j.hypertable or ""]
        failing.add_metric(key, float(j.failing))
        overdue.add_metric(key, float(j.overdue))
        failures.add_metric(key, j.total_failures)
        behind.add_metric(key, j.chunks_behind)
    yield failing
    yield overdue
    yield failures
    yield behind


def metrics_registry(pool: Pool, probe: Callable[[], IngestProbe] | None,
                     upkeep: UpkeepTracker | None = None) -> CollectorRegistry:
    """A fresh registry with the collector's metrics (never the global default registry) and
    the process's own (``process_resident_memory_bytes``, CPU seconds, open files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TallyMetrics(pool, probe, upkeep))
    ProcessCollector(registry=registry)
    return registry
