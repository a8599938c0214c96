"""GET /metrics: the Prometheus exposition of the app's own registry, from the probe and the
database."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from collector.api.app import create_app
from collector.api.ingest_routes import IngestProbe
from collector.metrics.families import job_families
from collector.storage import webhook_store
from collector.storage.operations_jobs import JobHealth
from collector.upkeep import UpkeepTracker
from collector.usage_refresh import RefreshStats
from collector.webhooks.events import EventType
from collector.webhooks.outbox import OutboxSink
from collector.webhooks.signing import new_secret
from tests.collector.billing.conftest import make_series, utc

Conn = psycopg.Connection[Any]


def _probe() -> IngestProbe:
    return IngestProbe(
        connected=True, pending=7, lag_s=1.5, last_flush_at=None, storage_ok=True,
        batches=40, readings=4000, dead_letters=2, flushes=10, flush_seconds_total=0.25,
        flush_retries=5, deadlock_retries=3,
        usage_refresh=RefreshStats(
            passes=12, seconds_total=3.5, last_pass_s=0.2, last_freshness_s=0.4,
            freshness_counts=(2, 9, 11, 12, 12, 12, 12, 12, 12, 12), freshness_sum=5.5,
        ),
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_metrics_expose_ingest_backlogs_and_progress(
    pool: psycopg_pool.ConnectionPool[Any], conn: Conn
) -> None:
    """Probe counters, dead letters by reason, usage-refresh backlog, a run in progress and
    the webhook backlog all appear with their values; the global registry stays untouched."""
    sid = make_series(conn, "m-1")
    conn.execute(
        "INSERT INTO dead_letters (topic, payload, reason) VALUES"
        " ('tally/v1/a/batch', 'x', 'bad json'), ('tally/v1/b/batch', 'y', 'bad json'),"
        " ('tally/v1/c/batch', 'z', 'unknown version')"
    )
    conn.execute(
        "INSERT INTO usage_dirty (series_id, ts_from, ts_to, queued_at)"
        " VALUES (%s, %s, %s, now() - interval '30 seconds')",
        (sid, utc(2026, 3, 1), utc(2026, 3, 1, 1)),
    )
    conn.execute(
        "INSERT INTO billing_runs (period, kind, status, total_customers, done_customers,"
        " started_at, updated_at) VALUES ('2026-03', 'close', 'running', 100, 40, now(), now())"
    )
    webhook_store.create_endpoint(conn, "http://127.0.0.1:9/x", new_secret(), event_types=None,
                                  customer_id=None, description=None)
    OutboxSink().emit(conn, EventType.ENROLLMENT_DONE, {}, at=utc(2026, 3, 1))
    with TestClient(create_app(pool, ingest_probe=_probe)) as client:
        r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    m = _samples(r.text)
    assert m[("tally_ingest_readings_total", ())] == 4000
    assert m[("tally_ingest_flush_seconds_total", ())] == 0.25
    assert m[("tally_ingest_flush_retries_total", ())] == 5
    assert m[("tally_ingest_deadlock_retries_total", ())] == 3
    assert m[("tally_ingest_unacknowledged_messages", ())] == 7
    assert m[("tally_dead_letters", (("reason", "bad json"),))] == 2
    assert m[("tally_dead_letters", (("reason", "unknown version"),))] == 1
    assert m[("tally_usage_refresh_pending_ranges", ())] == 1
    assert m[("tally_usage_refresh_lag_seconds", ())] >= 30
    assert m[("tally_usage_refresh_passes_total", ())] == 12
    assert m[("tally_usage_refresh_seconds_total", ())] == 3.5
    assert m[("tally_usage_refresh_freshness_seconds_bucket", (("le", "0.5"),))] == 9
    assert m[("tally_usage_refresh_freshness_seconds_bucket", (("le", "+Inf"),))] == 12
    assert m[("tally_usage_refresh_freshness_seconds_count", ())] == 12
    key = (("kind", "close"), ("period", "2026-03"))
    assert m[("tally_billing_run_customers_done", key)] == 40
    assert m[("tally_billing_run_customers_total", key)] == 100
    assert m[("tally_webhook_backlog", ())] == 1
    assert m[("tally_metrics_database_up", ())] == 1
    assert "tally_ingest_readings" not in REGISTRY._names_to_collectors


def test_the_grafana_dashboard_only_uses_metrics_the_collector_exposes(
    pool: psycopg_pool.ConnectionPool[Any],
) -> None:
    """Every metric name in deploy/grafana/tally-collector.json is in the exposition."""
    root = Path(__file__).resolve().parents[3]
    dash = json.loads((root / "deploy" / "grafana" / "tally-collector.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\b(?:tally|process)_[a-z_]+", e)}
    tracker = UpkeepTracker()
    tracker.succeeded("usage_refresh", utc(2026, 3, 1))
    with TestClient(create_app(pool, ingest_probe=_probe, upkeep=tracker)) as client:
        text = client.get("/metrics").text
    exposed = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    exposed |= {fam.name for fam in text_string_to_metric_families(text)}
    assert len(used) >= 15
    assert {"process_resident_memory_bytes", "tally_ingest_flush_retries_total"} <= used
    assert used <= exposed, used - exposed


def test_a_failing_background_task_shows_in_the_metrics(
    pool: psycopg_pool.ConnectionPool[Any],
) -> None:
    """A rollup refresh that failed three times in a row is ``tally_upkeep_failing`` 1 with its
    streak and failure count; a task that recovered is 0 (not only a log line)."""
    tracker = UpkeepTracker()
    at = utc(2026, 3, 1)
    for _ in range(3):
        tracker.failed("usage_rollups", at, "must be owner of view usage_1h")
    tracker.failed("usage_refresh", at, "connection lost")
    tracker.succeeded("usage_refresh", at)
    with TestClient(create_app(pool, ingest_probe=_probe, upkeep=tracker)) as client:
        m = _samples(client.get("/metrics").text)
    rollups = (("task", "usage_rollups"),)
    refresh = (("task", "usage_refresh"),)
    assert m[("tally_upkeep_failing", rollups)] == 1
    assert m[("tally_upkeep_consecutive_failures", rollups)] == 3
    assert m[("tally_upkeep_failures_total", rollups)] == 3
    assert m[("tally_upkeep_failing", refresh)] == 0
    assert m[("tally_upkeep_failures_total", refresh)] == 1


def test_timescale_jobs_become_labelled_gauges() -> None:
    """A failing compression policy and an overdue job are 1 under their id, name and
    hypertable; their failure counts are counters."""
    at = utc(2026, 3, 1)
    jobs = [
        JobHealth(1000, "Columnstore Policy [1000]", "readings", "Failed", at, at, 4,
                  'cannot drop portal "" while it is being set up', True, False),
        JobHealth(1001, "Refresh Continuous Aggregate Policy [1001]", None, "Success", at, at, 0,
                  None, False, True),
    ]
    registry = CollectorRegistry()
    registry.register(_JobsOnly(jobs))
    m = _samples(generate_latest(registry).decode())
    first = (("hypertable", "readings"), ("job", "Columnstore Policy [1000]"), ("job_id", "1000"))
    second = (("hypertable", ""), ("job", "Refresh Continuous Aggregate Policy [1001]"),
              ("job_id", "1001"))
    assert m[("tally_timescale_job_failing", first)] == 1
    assert m[("tally_timescale_job_overdue", first)] == 0
    assert m[("tally_timescale_job_failures_total", first)] == 4
    assert m[("tally_timescale_job_failing", second)] == 0
    assert m[("tally_timescale_job_overdue", second)] == 1


class _JobsOnly(Collector):
    def __init__(self, jobs: list[JobHealth]) -> None:
        self._jobs = jobs

    def collect(self) -> Iterator[Metric]:
        yield from job_families(self._jobs)
