"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from collector.storage.database import Pool

__all__ = ["get_pool"]


def get_pool(request: Request) -> Pool:
    """The connection pool the app was created with (``app.state.pool``)."""
    return cast(Pool, request.app.state.pool)
