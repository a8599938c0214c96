"""Webhook endpoints, the delivery log and manual redelivery.

Role intent: billing for creating/disabling endpoints and redelivering; read-only for the
delivery log. The endpoint secret is shown once, in the answer that creates the endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from collector.access import Role
from collector.api.access import requires
from collector.api.params import BodyId, Id
from collector.errors import NotFound, NotificationError
from collector.storage import webhook_store
from collector.storage.database import Pool
from collector.webhooks.events import EventType
from collector.webhooks.signing import new_secret

from .deps import get_pool

__all__ = ["router"]

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]
PoolDep = Annotated[Pool, Depends(get_pool)]


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except NotificationError as exc:
        raise HTTPException(422, str(exc)) from exc


def _now(request: Request) -> datetime:
    clock = getattr(request.app.state, "clock", None)
    return clock() if callable(clock) else datetime.now(UTC)


class EndpointIn(BaseModel):
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    event_types: list[EventType] | None = None
    customer_id: BodyId | None = None
    description: str | None = Field(None, max_length=500)


class EndpointOut(BaseModel):
    endpoint_id: BodyId
    url: str
    event_types: list[str] | None
    customer_id: BodyId | None
    description: str | None
    active: bool


class EndpointCreated(EndpointOut):
    secret: str


def _out(e: webhook_store.Endpoint) -> EndpointOut:
    return EndpointOut(
        endpoint_id=e.endpoint_id,
        url=e.url,
        event_types=list(e.event_types) if e.event_types is not None else None,
        customer_id=e.customer_id,
        description=e.description,
        active=e.active,
    )


@router.post("/endpoints", dependencies=BILLING, response_model=EndpointCreated, status_code=201)
def create_endpoint(pool: PoolDep, body: EndpointIn) -> EndpointCreated:
    """Register a receiver for some (or all) event types; a ``customer_id`` endpoint gets only
    that customer's events. The answer holds the signing secret. Role intent: billing."""
    secret = new_secret()
    with _http_errors(), pool.connection() as conn:
        e = webhook_store.create_endpoint(
            conn,
            body.url,
            secret,
            event_types=[t.value for t in body.event_types] if body.event_types else None,
            customer_id=body.customer_id,
            description=body.description,
        )
    return EndpointCreated(**_out(e).model_dump(), secret=secret)


@router.get("/endpoints", dependencies=READ, response_model=list[EndpointOut])
def list_endpoints(pool: PoolDep) -> list[EndpointOut]:
    """Registered endpoints (without secrets). Role intent: read-only."""
    with pool.connection() as conn:
        return [_out(e) for e in webhook_store.list_endpoints(conn)]


class ActiveIn(BaseModel):
    active: bool


@router.patch("/endpoints/{endpoint_id}", dependencies=BILLING, response_model=EndpointOut)
def set_active(pool: PoolDep, endpoint_id: Id, body: ActiveIn) -> EndpointOut:
    """Disable (or re-enable) an endpoint. Role intent: billing."""
    with _http_errors(), pool.connection() as conn:
        return _out(webhook_store.set_endpoint_active(conn, endpoint_id, body.active))


class DeliveryOut(BaseModel):
    delivery_id: BodyId
    event_id: str
    event_type: str
    endpoint_id: BodyId
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


def _delivery(d: webhook_store.Delivery) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=d.delivery_id,
        event_id=d.event_id,
        event_type=d.event_type,
        endpoint_id=d.endpoint_id,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status=d.last_status,
        last_error=d.last_error,
        delivered_at=d.delivered_at,
        created_at=d.created_at,
    )


@router.get("/deliveries", dependencies=READ, response_model=list[DeliveryOut])
def list_deliveries(
    pool: PoolDep,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
    endpoint_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """The delivery log, newest first. Role intent: read-only."""
    with _http_errors(), pool.connection() as conn:
        rows = webhook_store.list_deliveries(
            conn, status=status, endpoint_id=endpoint_id, limit=limit
        )
    return [_delivery(d) for d in rows]


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


@router.get(
    "/deliveries/{delivery_id}/attempts", dependencies=READ, response_model=list[AttemptOut]
)
def list_attempts(pool: PoolDep, delivery_id: Id) -> list[AttemptOut]:
    """Every attempt of one delivery. Role intent: read-only."""
    with pool.connection() as conn:
        return [
            AttemptOut(attempted_at=a, status_code=s, error=e, duration_ms=d)
            for a, s, e, d in webhook_store.attempts_of(conn, delivery_id)
        ]


@router.post(
    "/deliveries/{delivery_id}/redeliver", dependencies=BILLING, response_model=DeliveryOut
)
def redeliver(request: Request, pool: PoolDep, delivery_id: Id) -> DeliveryOut:
    """Send a delivery again now (same event id). Role intent: billing."""
    with _http_errors(), pool.connection() as conn:
        return _delivery(webhook_store.redeliver(conn, delivery_id, _now(request)))
