"""Prometheus metrics of the collector: a registry built in the composition root.

    registry = metrics_registry(pool, ingest_probe)   # a fresh CollectorRegistry (no globals)
    prometheus_client.generate_latest(registry)        # what GET /metrics serves
"""

from __future__ import annotations

from collector.metrics.families import TallyMetrics, metrics_registry

__all__ = ["TallyMetrics", "metrics_registry"]
