"""Shared HTTP plumbing of the billing API: error mapping, idempotency keys, body models.

Errors of the billing domain map to HTTP here and only here: NotFound → 404, Conflict → 409,
ValidationFailed/PlanError → 422. POSTs accept an ``Idempotency-Key`` header: the same key with
the same body returns the stored response; with a different body it is a 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from collector.errors import Conflict, NotFound, PlanError, ValidationFailed
from collector.storage import billing_run_store as runs
from collector.storage.database import Pool

from .deps import get_pool

PoolDep = Annotated[Pool, Depends(get_pool)]
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Conn = psycopg.Connection[Any]
Op = Callable[[Conn], tuple[int, Any]]


@contextmanager
def http_errors() -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except (ValidationFailed, PlanError) as exc:
        raise HTTPException(422, str(exc)) from exc


def idempotent(pool: Pool, request: Request, key: str | None, body: Any, op: Op) -> JSONResponse:
    """Run ``op`` in one transaction together with claiming the idempotency key."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    scope = f"{request.method} {request.url.path}"
    with http_errors(), pool.connection() as conn, conn.transaction():
        if key:
            stored = runs.claim_idempotency_key(conn, scope, key, digest)
            if stored is not None:
                if stored.request_hash != digest:
                    raise HTTPException(409, "Idempotency-Key reused with a different request body")
                return JSONResponse(
                    stored.body, stored.status_code, headers={"Idempotent-Replayed": "true"}
                )
        status, payload = op(conn)
        if key:
            runs.save_idempotent_response(conn, scope, key, status, payload)
    return JSONResponse(payload, status)


class BodyModel(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid")


def dump(m: BaseModel) -> Any:
    return m.model_dump(mode="json")
