"""The FastAPI application factory; the pool and probes are created by the runner."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from collector import __version__
from collector.errors import StorageError, StorageUnavailable, ValueRefused
from collector.metrics import metrics_registry
from collector.storage.database import Pool
from collector.upkeep import UpkeepTracker

from . import (
    access_routes,
    billing_routes,
    console_ops_routes,
    console_routes,
    devices_routes,
    ingest_routes,
    portal_alert_routes,
    portal_routes,
    portal_signin,
    usage_routes,
    wallets_routes,
)
from .access_gate import StaffGate
from .access_middleware import AccessMiddleware, AccessPolicy
from .alert_routes import router as alert_router
from .analytics_routes import router as analytics_router
from .billing_advance_routes import router as billing_advance_router
from .billing_progressive_routes import router as billing_progressive_router
from .error_docs import declare_error_responses
from .ingest_routes import IngestProbe
from .metrics_routes import router as metrics_router
from .report_routes import router as report_router
from .wallets_auto_apply_routes import router as wallets_auto_apply_router
from .webhook_routes import router as webhook_router

__all__ = ["create_app"]

DOCS_ASSETS = "/docs-assets"
DOC_PATHS = frozenset({DOCS_ASSETS, "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def create_app(
    pool: Pool,
    *,
    ingest_probe: Callable[[], IngestProbe] | None = None,
    title: str = "Tally collector",
    staff_tokens: Sequence[str] | None = None,
    require_staff_key: bool = False,
    key_cache_s: float = 5.0,
    max_body_bytes: int = 1 << 20,
    upkeep: UpkeepTracker | None = None,
) -> FastAPI:
    """The collector API over ``pool``; ``ingest_probe`` reports the consumer for ``/health``.

    Every route declares its access with ``access.requires(Role…)``, ``customer_only()`` or
    ``public()``; ``AccessMiddleware`` authenticates staff keys (and configured
    ``staff_tokens``, which act as admin) before a body is read (docs/security.md).
    """
    # API docs (/docs, /redoc) with their assets served by the collector, not a CDN.
    app = FastAPIOffline(title=title, version=__version__, static_url=DOCS_ASSETS)
    app.state.pool = pool
    app.state.ingest_probe = ingest_probe
    app.state.upkeep = upkeep  # background tasks' outcomes, shown by /health
    gate = StaffGate.create(
        pool, staff_tokens or (), require_key=require_staff_key, cache_s=key_cache_s
    )
    app.state.staff_gate = gate
    app.include_router(ingest_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(billing_routes.router)
    app.include_router(access_routes.router)
    app.include_router(wallets_routes.router)
    app.include_router(billing_progressive_router)
    app.include_router(billing_advance_router)
    app.include_router(wallets_auto_apply_router)
    app.include_router(analytics_router)
    app.include_router(report_router)
    app.include_router(alert_router)
    app.include_router(webhook_router)
    app.state.metrics_registry = metrics_registry(pool, ingest_probe, upkeep)
    app.include_router(metrics_router)
    app.include_router(portal_routes.router)
    app.include_router(portal_alert_routes.router)
    # Device identity: staff routes, and the public redemption of one-time codes. The service
    # is ``app.state.devices`` (set by the runner; routes answer 503 without it).
    app.state.devices = None
    app.include_router(devices_routes.router)
    app.include_router(devices_routes.enroll_router)
    app.include_router(portal_signin.router)
    app.include_router(portal_signin.staff_router)
    # The staff console signs staff in with its own session (collector.api.console_routes).
    app.include_router(console_routes.router)
    app.include_router(console_ops_routes.router)
    declare_error_responses(app)
    app.add_middleware(
        AccessMiddleware,
        policy=AccessPolicy(gate, max_body_bytes=max_body_bytes, public_paths=DOC_PATHS),
    )

    @app.exception_handler(StorageUnavailable)
    def _unavailable(request: Request, exc: StorageUnavailable) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer, except that NaN/Infinity in the echoed input are written as
        # strings (JSON has no such numbers, and failing to encode them would be a 500).
        return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, 422)

    @app.exception_handler(ValueRefused)
    def _refused(request: Request, exc: ValueRefused) -> JSONResponse:
        # A backstop: parameters are validated at the boundary (collector/api/params.py).
        return JSONResponse({"detail": f"invalid value: {exc}"}, status_code=422)

    @app.exception_handler(StorageError)
    def _storage(request: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse({"detail": f"storage error: {exc}"}, status_code=500)

    return app


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
