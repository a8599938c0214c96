"""``GET /metrics``: the Prometheus text exposition of the app's own registry.

Role intent: read-only (monitoring). The registry is built by ``create_app`` (the composition
root) and kept in ``app.state.metrics_registry``.
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from collector.access import Role
from collector.api.access import requires

__all__ = ["router"]

router = APIRouter(tags=["metrics"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]


@router.get("/metrics", dependencies=READ, response_class=Response)
def metrics(request: Request) -> Response:
    """Ingest, usage refresh, billing runs, dead letters and webhook backlog figures."""
    registry = cast(CollectorRegistry, request.app.state.metrics_registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
