"""Alert rules and recorded alerts.

Role intent: billing for creating and deactivating rules (customer rules are set on a
customer's behalf, or by the portal), read-only for listing rules and alerts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from collector.access import Role
from collector.alerts.rules import AlertRule, Metric
from collector.api.access import requires
from collector.api.params import BodyId, Id
from collector.errors import NotFound, NotificationError
from collector.storage import alert_store
from collector.storage.database import Pool

from .deps import get_pool

__all__ = ["router"]

router = APIRouter(prefix="/alerts", tags=["alerts"])
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


class RuleIn(BaseModel):
    """``threshold``: a quantity in ``unit`` or an amount (invoice total, tax included) in the
    customer's currency; with ``relative`` a percentage of the previous period's value."""

    owner: str = Field(pattern="^(customer|staff)$")
    customer_id: BodyId | None = None
    metric: Metric
    unit: str | None = Field(None, max_length=32)
    threshold: Decimal = Field(gt=0)
    relative: bool = False
    name: str = Field("", max_length=200)


class RuleOut(RuleIn):
    rule_id: BodyId
    active: bool


def _out(r: AlertRule) -> RuleOut:
    return RuleOut(
        rule_id=r.rule_id,
        owner=r.owner,
        customer_id=r.customer_id,
        metric=r.metric,
        unit=r.unit,
        threshold=r.threshold,
        relative=r.relative,
        name=r.name,
        active=r.active,
    )


@router.post("/rules", dependencies=BILLING, response_model=RuleOut, status_code=201)
def create_rule(pool: PoolDep, body: RuleIn) -> RuleOut:
    """A threshold on quantity or amount per period. Role intent: billing."""
    with _http_errors():
        rule = AlertRule(
            0,
            body.owner,
            body.customer_id,
            body.metric,
            body.unit,
            body.threshold,
            body.relative,
            body.name,
        )
        with pool.connection() as conn:
            return _out(alert_store.create_rule(conn, rule))


@router.get("/rules", dependencies=READ, response_model=list[RuleOut])
def list_rules(
    pool: PoolDep, customer_id: Annotated[int | None, Query(ge=1)] = None
) -> list[RuleOut]:
    """Rules (of one customer). Role intent: read-only."""
    with pool.connection() as conn:
        return [_out(r) for r in alert_store.list_rules(conn, customer_id=customer_id)]


@router.delete("/rules/{rule_id}", dependencies=BILLING, status_code=204)
def deactivate_rule(pool: PoolDep, rule_id: Id) -> None:
    """Stop a rule (its alerts stay). Role intent: billing."""
    with _http_errors(), pool.connection() as conn:
        alert_store.deactivate_rule(conn, rule_id)


class AlertOut(BaseModel):
    alert_id: BodyId
    rule_id: BodyId
    customer_id: BodyId
    period: str
    value: Decimal
    limit_value: Decimal
    crossed_at: datetime
    event_id: str | None


@router.get("", dependencies=READ, response_model=list[AlertOut])
def list_alerts(
    pool: PoolDep,
    customer_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """Recorded alerts, newest first. Role intent: read-only."""
    with pool.connection() as conn:
        return [
            AlertOut(
                alert_id=a.alert_id,
                rule_id=a.rule_id,
                customer_id=a.customer_id,
                period=a.period,
                value=a.value,
                limit_value=a.limit_value,
                crossed_at=a.crossed_at,
                event_id=a.event_id,
            )
            for a in alert_store.list_alerts(conn, customer_id=customer_id, limit=limit)
        ]
