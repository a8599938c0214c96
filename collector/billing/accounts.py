"""Staff operations on customers, plans and subscriptions (validation + storage calls).

Every function takes an open connection and runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg

from collector.billing.model import Customer, CustomerSpec, Plan, PlanVersion, Subscription
from collector.billing.pricing import parse_plan_document
from collector.errors import Conflict, ValidationFailed
from collector.storage import billing_store as store

Conn = psycopg.Connection[Any]


def _aware(name: str, t: datetime) -> datetime:
    if t.utcoffset() is None:
        raise ValidationFailed(f"{name} must include a UTC offset")
    return t


def create_plan(
    conn: Conn, code: str, name: str, document: Mapping[str, Any]
) -> tuple[Plan, PlanVersion]:
    """A new plan with version 1; the document must be a valid ``tally.plan/v1`` plan."""
    plan = parse_plan_document(document)
    return store.create_plan(conn, code, name or plan.name or code, plan.currency, document)


def new_plan_version(conn: Conn, plan_id: int, document: Mapping[str, Any]) -> PlanVersion:
    """A price change: a new immutable version (existing subscriptions keep theirs)."""
    plan = parse_plan_document(document)
    current = store.get_plan(conn, plan_id)
    if plan.currency != current.currency:
        raise ValidationFailed(
            f"plan {current.code} is in {current.currency}; a new version cannot be in"
            f" {plan.currency}"
        )
    return store.add_plan_version(conn, plan_id, document)


def _check_currency(conn: Conn, customer: Customer, plan_version_id: int) -> None:
    pv = store.get_plan_version(conn, plan_version_id)
    plan = store.get_plan(conn, pv.plan_id)
    if plan.currency != customer.spec.currency:
        raise ValidationFailed(
            f"plan {plan.code} is in {plan.currency} but customer {customer.customer_id}"
            f" is billed in {customer.spec.currency}"
        )


def assign_meter(
    conn: Conn,
    customer_id: int,
    series_id: int,
    plan_version_id: int,
    valid_from: datetime,
    *,
    valid_to: datetime | None = None,
) -> Subscription:
    """Bill meter ``series_id`` to a customer from ``valid_from`` (installation)."""
    customer = store.get_customer(conn, customer_id)
    _check_currency(conn, customer, plan_version_id)
    return store.insert_subscription(
        conn,
        customer_id,
        series_id,
        plan_version_id,
        _aware("valid_from", valid_from),
        valid_to=None if valid_to is None else _aware("valid_to", valid_to),
    )


def end_subscription(conn: Conn, subscription_id: int, at: datetime) -> Subscription:
    """Stop billing the meter at ``at`` (removal)."""
    return store.end_subscription(conn, subscription_id, _aware("at", at))


def _split(conn: Conn, subscription_id: int, at: datetime) -> Subscription:
    sub = store.get_subscription(conn, subscription_id, lock=True)
    if sub.valid_to is not None and sub.valid_to <= at:
        raise Conflict(f"subscription {subscription_id} has ended before {at.isoformat()}")
    store.end_subscription(conn, subscription_id, _aware("at", at))
    return sub


def move_meter(
    conn: Conn,
    subscription_id: int,
    to_customer_id: int,
    at: datetime,
    plan_version_id: int | None = None,
) -> Subscription:
    """Move a meter to another customer at ``at``: end this subscription, start a new one."""
    sub = _split(conn, subscription_id, at)
    if to_customer_id == sub.customer_id:
        raise ValidationFailed("moving a meter needs a different customer")
    pv = plan_version_id or sub.plan_version_id
    _check_currency(conn, store.get_customer(conn, to_customer_id), pv)
    return store.insert_subscription(
        conn, to_customer_id, sub.series_id, pv, at, valid_to=sub.valid_to
    )


def change_plan(
    conn: Conn, subscription_id: int, plan_version_id: int, at: datetime
) -> Subscription:
    """Switch the meter to another plan version at ``at`` (charges split at that instant)."""
    sub = _split(conn, subscription_id, at)
    if plan_version_id == sub.plan_version_id:
        raise ValidationFailed("the subscription is already on that plan version")
    _check_currency(conn, store.get_customer(conn, sub.customer_id), plan_version_id)
    return store.insert_subscription(
        conn, sub.customer_id, sub.series_id, plan_version_id, at, valid_to=sub.valid_to
    )


def create_customer(conn: Conn, spec: CustomerSpec) -> Customer:
    return store.create_customer(conn, spec)


def update_customer(conn: Conn, customer_id: int, spec: CustomerSpec) -> Customer:
    return store.update_customer(conn, customer_id, spec)
