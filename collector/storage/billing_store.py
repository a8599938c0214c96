"""Billing master data in PostgreSQL: customers, plans + immutable versions, subscriptions.

Functions take an open connection; the caller owns the transaction (``with conn.transaction()``),
so an API request can claim its idempotency key and do its work atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from collector.billing.model import Address, Customer, CustomerSpec, Plan, PlanVersion, Subscription
from collector.billing.parties import BuyerTax
from collector.errors import Conflict, NotFound, ValidationFailed
from collector.storage.billing_errors import translated

Conn = psycopg.Connection[Any]
_SERIES_LOCK_SPACE = 20_020  # advisory-lock namespace for per-series subscription changes


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None


def _cursor_id(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        value = int(cursor)
    except ValueError as exc:
        raise ValidationFailed(f"invalid cursor {cursor!r}") from exc
    if value < 0:
        raise ValidationFailed(f"invalid cursor {cursor!r}")
    return value


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= 1000:
        raise ValidationFailed("limit must be 1..1000")
    return limit


# -- customers ---------------------------------------------------------------------------------

_CUSTOMER_COLS = (
    "customer_id, name, address, currency, time_zone, tax_rate, language, issuer,"
    " invoice_prefix, anchor_day, created_at, tax"
)


def _customer(row: Sequence[Any]) -> Customer:
    addr: Mapping[str, str] = row[2]
    spec = CustomerSpec(
        name=row[1],
        address=Address(
            line1=addr["line1"],
            line2=addr.get("line2", ""),
            postal_code=addr.get("postal_code", ""),
            city=addr["city"],
            country=addr["country"],
        ),
        currency=row[3].strip(),
        time_zone=row[4],
        tax_rate=Decimal(row[5]),
        language=row[6],
        issuer=row[7],
        invoice_prefix=row[8],
        anchor_day=int(row[9]),
        tax=BuyerTax.from_json(row[11]),
    )
    return Customer(customer_id=int(row[0]), spec=spec, created_at=row[10])


def _spec_params(spec: CustomerSpec) -> tuple[Any, ...]:
    return (
        spec.name,
        Jsonb(spec.address.to_json()),
        spec.currency,
        spec.time_zone,
        spec.tax_rate,
        spec.language,
        spec.issuer,
        spec.invoice_prefix,
        spec.anchor_day,
        Jsonb(spec.tax.to_json()),
    )


def create_customer(conn: Conn, spec: CustomerSpec) -> Customer:
    with translated("create customer"):
        row = conn.execute(
            sql.SQL(
                "INSERT INTO customers (name, address, currency, time_zone, tax_rate, language, "
                "issuer, invoice_prefix, anchor_day, tax) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " RETURNING {}"
            ).format(sql.SQL(_CUSTOMER_COLS)),
            _spec_params(spec),
        ).fetchone()
    assert row is not None
    return _customer(row)


def update_customer(conn: Conn, customer_id: int, spec: CustomerSpec) -> Customer:
    """Replace a customer's details. Final invoices keep the snapshot taken when drafted."""
    with translated("update customer"):
        row = conn.execute(
            sql.SQL(
                "UPDATE customers SET name=%s, address=%s, currency=%s, time_zone=%s, tax_rate=%s, "
                "language=%s, issuer=%s, invoice_prefix=%s, anchor_day=%s, tax=%s, updated_at=now()"
                " WHERE "
                "customer_id=%s RETURNING {}"
            ).format(sql.SQL(_CUSTOMER_COLS)),
            (*_spec_params(spec), customer_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return _customer(row)


def get_customer(conn: Conn, customer_id: int) -> Customer:
    with translated("get customer"):
        row = conn.execute(
            sql.SQL("SELECT {} FROM customers WHERE customer_id=%s").format(
                sql.SQL(_CUSTOMER_COLS)
            ),
            (customer_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return _customer(row)


def list_customers(
    conn: Conn,
    *,
    limit: int = 100,
    cursor: str | None = None,
    name_contains: str | None = None,
    issuer: str | None = None,
) -> Page[Customer]:
    _check_limit(limit)
    with translated("list customers"):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM customers WHERE customer_id > %s AND (%s::text IS NULL OR "
                "strpos(lower(name), lower(%s::text)) > 0) AND (%s::text IS NULL OR issuer = "
                "%s::text) ORDER BY customer_id LIMIT %s"
            ).format(sql.SQL(_CUSTOMER_COLS)),
            (_cursor_id(cursor), name_contains, name_contains, issuer, issuer, limit + 1),
        ).fetchall()
    items = tuple(_customer(r) for r in rows[:limit])
    nxt = str(items[-1].customer_id) if len(rows) > limit else None
    return Page(items, nxt)


def customer_ids(conn: Conn, *, after: int = 0, limit: int = 1000) -> list[int]:
    with translated("list customer ids"):
        rows = conn.execute(
            "SELECT customer_id FROM customers WHERE customer_id > %s ORDER BY customer_id LIMIT"
            " %s",
            (after, limit),
        ).fetchall()
    return [int(r[0]) for r in rows]


def customers_by_ids(conn: Conn, ids: Sequence[int]) -> list[Customer]:
    with translated("load customers"):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM customers WHERE customer_id = ANY(%s) ORDER BY customer_id"
            ).format(sql.SQL(_CUSTOMER_COLS)),
            (list(ids),),
        ).fetchall()
    return [_customer(r) for r in rows]


def count_customers(conn: Conn) -> int:
    with translated("count customers"):
        row = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert row is not None
    return int(row[0])


# -- plans -------------------------------------------------------------------------------------


def _plan(row: Sequence[Any]) -> Plan:
    return Plan(int(row[0]), row[1], row[2], row[3].strip(), int(row[4]))


_PLAN_SELECT = (
    "SELECT p.plan_id, p.code, p.name, p.currency,"
    " (SELECT max(version) FROM plan_versions v WHERE v.plan_id = p.plan_id) FROM plans p"
)


def _version(row: Sequence[Any]) -> PlanVersion:
    return PlanVersion(int(row[0]), int(row[1]), int(row[2]), row[3], row[4])


def create_plan(
    conn: Conn, code: str, name: str, currency: str, document: Mapping[str, Any]
) -> tuple[Plan, PlanVersion]:
    with translated("create plan"):
        row = conn.execute(
            "INSERT INTO plans (code, name, currency) VALUES (%s,%s,%s) RETURNING plan_id",
            (code, name, currency),
        ).fetchone()
        assert row is not None
        version = add_plan_version(conn, int(row[0]), document)
    return get_plan(conn, int(row[0])), version


def add_plan_version(conn: Conn, plan_id: int, document: Mapping[str, Any]) -> PlanVersion:
    """Store ``document`` as the next version of the plan (row-locked: versions are dense)."""
    with translated("add plan version"):
        locked = conn.execute(
            "SELECT plan_id FROM plans WHERE plan_id=%s FOR UPDATE", (plan_id,)
        ).fetchone()
        if locked is None:
            raise NotFound(f"plan {plan_id} does not exist")
        row = conn.execute(
            "INSERT INTO plan_versions (plan_id, version, document)"
            " SELECT %s, coalesce(max(version), 0) + 1, %s FROM plan_versions WHERE plan_id=%s"
            " RETURNING plan_version_id, plan_id, version, document, created_at",
            (plan_id, Jsonb(dict(document)), plan_id),
        ).fetchone()
    assert row is not None
    return _version(row)


def get_plan(conn: Conn, plan_id: int) -> Plan:
    with translated("get plan"):
        row = conn.execute(f"{_PLAN_SELECT} WHERE p.plan_id=%s", (plan_id,)).fetchone()
    if row is None:
        raise NotFound(f"plan {plan_id} does not exist")
    return _plan(row)


def list_plans(conn: Conn, *, limit: int = 100, cursor: str | None = None) -> Page[Plan]:
    _check_limit(limit)
    with translated("list plans"):
        rows = conn.execute(
            f"{_PLAN_SELECT} WHERE p.plan_id > %s ORDER BY p.plan_id LIMIT %s",
            (_cursor_id(cursor), limit + 1),
        ).fetchall()
    items = tuple(_plan(r) for r in rows[:limit])
    return Page(items, str(items[-1].plan_id) if len(rows) > limit else None)


def get_plan_version(conn: Conn, plan_version_id: int) -> PlanVersion:
    with translated("get plan version"):
        row = conn.execute(
            "SELECT plan_version_id, plan_id, version, document, created_at FROM plan_versions"
            " WHERE plan_version_id=%s",
            (plan_version_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"plan version {plan_version_id} does not exist")
    return _version(row)


def plan_versions(conn: Conn, ids: Sequence[int]) -> list[PlanVersion]:
    with translated("load plan versions"):
        rows = conn.execute(
            "SELECT plan_version_id, plan_id, version, document, created_at FROM plan_versions"
            " WHERE plan_version_id = ANY(%s)",
            (list(ids),),
        ).fetchall()
    return [_version(r) for r in rows]


def list_plan_versions(conn: Conn, plan_id: int) -> list[PlanVersion]:
    get_plan(conn, plan_id)
    with translated("list plan versions"):
        rows = conn.execute(
            "SELECT plan_version_id, plan_id, version, document, created_at FROM plan_versions"
            " WHERE plan_id=%s ORDER BY version",
            (plan_id,),
        ).fetchall()
    return [_version(r) for r in rows]


# -- subscriptions -----------------------------------------------------------------------------

_SUB_COLS = "subscription_id, customer_id, series_id, plan_version_id, valid_from, valid_to"


def _sub(row: Sequence[Any]) -> Subscription:
    return Subscription(int(row[0]), int(row[1]), int(row[2]), int(row[3]), row[4], row[5])


def get_subscription(conn: Conn, subscription_id: int, *, lock: bool = False) -> Subscription:
    with translated("get subscription"):
        row = conn.execute(
            sql.SQL("SELECT {} FROM subscriptions WHERE subscription_id=%s {}").format(
                sql.SQL(_SUB_COLS), sql.SQL("FOR UPDATE" if lock else "")
            ),
            (subscription_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"subscription {subscription_id} does not exist")
    return _sub(row)


def _lock_series(conn: Conn, series_id: int) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_SERIES_LOCK_SPACE, series_id % 2**31))


def insert_subscription(
    conn: Conn,
    customer_id: int,
    series_id: int,
    plan_version_id: int,
    valid_from: datetime,
    *,
    valid_to: datetime | None = None,
) -> Subscription:
    """Assign a meter to a customer; Conflict if the meter is billed to anyone in that time."""
    Subscription(0, customer_id, series_id, plan_version_id, valid_from, valid_to)  # validate
    with translated("assign meter"):
        if conn.execute("SELECT 1 FROM series WHERE series_id=%s", (series_id,)).fetchone() is None:
            raise NotFound(f"series {series_id} does not exist")
        _lock_series(conn, series_id)
        clash = conn.execute(
            "SELECT subscription_id, customer_id FROM subscriptions WHERE series_id=%s"
            " AND valid_from < coalesce(%s::timestamptz, 'infinity')"
            " AND coalesce(valid_to, 'infinity') > %s LIMIT 1",
            (series_id, valid_to, valid_from),
        ).fetchone()
        if clash is not None:
            raise Conflict(
                f"series {series_id} is already billed to customer {clash[1]} by subscription"
                f" {clash[0]} in that time; end that subscription first"
            )
        row = conn.execute(
            sql.SQL(
                "INSERT INTO subscriptions (customer_id, series_id, plan_version_id, valid_from, "
                "valid_to) VALUES (%s,%s,%s,%s,%s) RETURNING {}"
            ).format(sql.SQL(_SUB_COLS)),
            (customer_id, series_id, plan_version_id, valid_from, valid_to),
        ).fetchone()
    assert row is not None
    return _sub(row)


def end_subscription(conn: Conn, subscription_id: int, at: datetime) -> Subscription:
    """End a subscription at ``at`` (exclusive). Only shortening is allowed."""
    sub = get_subscription(conn, subscription_id, lock=True)
    if at <= sub.valid_from:
        raise ValidationFailed(f"end {at.isoformat()} is not after the start of subscription")
    if sub.valid_to is not None and at > sub.valid_to:
        raise Conflict(f"subscription {subscription_id} already ends at {sub.valid_to.isoformat()}")
    with translated("end subscription"):
        row = conn.execute(
            sql.SQL(
                "UPDATE subscriptions SET valid_to=%s WHERE subscription_id=%s RETURNING {}"
            ).format(sql.SQL(_SUB_COLS)),
            (at, subscription_id),
        ).fetchone()
    assert row is not None
    return _sub(row)


def list_subscriptions(
    conn: Conn,
    *,
    limit: int = 100,
    cursor: str | None = None,
    customer_id: int | None = None,
    series_id: int | None = None,
    active_at: datetime | None = None,
) -> Page[Subscription]:
    _check_limit(limit)
    with translated("list subscriptions"):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM subscriptions WHERE subscription_id > %s AND (%s::bigint IS NULL"
                " OR "
                "customer_id = %s::bigint) AND (%s::bigint IS NULL OR series_id = %s::bigint) AND "
                "(%s::timestamptz IS NULL OR (valid_from <= %s::timestamptz      AND "
                "coalesce(valid_to, 'infinity') > %s::timestamptz)) ORDER BY subscription_id"
                " LIMIT %s"
            ).format(sql.SQL(_SUB_COLS)),
            (
                _cursor_id(cursor),
                customer_id,
                customer_id,
                series_id,
                series_id,
                active_at,
                active_at,
                active_at,
                limit + 1,
            ),
        ).fetchall()
    items = tuple(_sub(r) for r in rows[:limit])
    return Page(items, str(items[-1].subscription_id) if len(rows) > limit else None)


def subscriptions_overlapping(
    conn: Conn, customer_ids: Sequence[int], start: datetime, end: datetime
) -> list[Subscription]:
    """Subscriptions of these customers that overlap ``[start, end)`` (set-based, one query)."""
    with translated("load subscriptions"):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM subscriptions WHERE customer_id = ANY(%s) AND valid_from < %s AND "
                "coalesce(valid_to, 'infinity') > %s ORDER BY customer_id, series_id, valid_from"
            ).format(sql.SQL(_SUB_COLS)),
            (list(customer_ids), end, start),
        ).fetchall()
    return [_sub(r) for r in rows]
