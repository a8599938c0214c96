"""The FastAPI application factory; the pool and probes are created by the runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from collector import __version__
from collector.errors import StorageError, StorageUnavailable
from collector.metrics import metrics_registry
from collector.storage.database import Pool

from . import billing_routes, ingest_routes, portal_routes, usage_routes
from .alert_routes import router as alert_router
from .analytics_routes import router as analytics_router
from .ingest_routes import IngestProbe
from .metrics_routes import router as metrics_router
from .report_routes import router as report_router
from .staff_auth import StaffAuth, require_staff
from .webhook_routes import router as webhook_router

__all__ = ["create_app"]


def create_app(
    pool: Pool,
    *,
    ingest_probe: Callable[[], IngestProbe] | None = None,
    title: str = "Tally collector",
    staff_tokens: Sequence[str] | None = None,
) -> FastAPI:
    """The collector API over ``pool``; ``ingest_probe`` reports the consumer for ``/health``."""
    app = FastAPI(title=title, version=__version__)
    app.state.pool = pool
    app.state.ingest_probe = ingest_probe
    # Staff routes need a staff token when tokens are configured (``staff_auth``); the portal
    # authenticates customers with its own tokens.
    app.state.staff_auth = StaffAuth.from_config(staff_tokens) if staff_tokens else None
    staff = [Depends(require_staff)]
    app.include_router(ingest_routes.router, dependencies=staff)
    app.include_router(usage_routes.router, dependencies=staff)
    app.include_router(billing_routes.router, dependencies=staff)
    app.include_router(analytics_router, dependencies=staff)
    app.include_router(report_router, dependencies=staff)
    app.include_router(alert_router, dependencies=staff)
    app.include_router(webhook_router, dependencies=staff)
    app.state.metrics_registry = metrics_registry(pool, ingest_probe)
    app.include_router(metrics_router, dependencies=staff)
    app.include_router(portal_routes.router)

    @app.exception_handler(StorageUnavailable)
    def _unavailable(request: Request, exc: StorageUnavailable) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    @app.exception_handler(StorageError)
    def _storage(request: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse({"detail": f"storage error: {exc}"}, status_code=500)

    return app
