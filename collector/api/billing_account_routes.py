"""Billing API, staff side: customers (and their portal tokens), plans, subscriptions."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from collector.access import Role
from collector.billing import accounts
from collector.billing import serialize as out
from collector.billing.model import Address, CustomerSpec
from collector.billing.parties import BuyerTax, TaxCategory
from collector.storage import billing_portal_store as portal
from collector.storage import billing_store as store
from collector.storage import signin_store

from .access import requires
from .billing_http import BodyModel, Conn, KeyHeader, PoolDep, dump, http_errors, idempotent
from .params import BodyId, Id, IdQuery, When

__all__ = ["router"]

router = APIRouter(tags=["billing"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]


# -- request bodies ----------------------------------------------------------------------------


class AddressIn(BodyModel):
    line1: str
    line2: str = ""
    postal_code: str = ""
    city: str
    country: str


class TaxIn(BodyModel):
    """The customer's VAT facts (see ``collector.billing.parties.BuyerTax``)."""

    business: bool = False
    vat_id: str = ""
    category: Literal["S", "Z", "E", "AE", "K", "G", "O"] = "S"
    exemption_reason: str = ""
    peppol_endpoint: str = ""
    buyer_reference: str = ""
    email: str = ""

    def tax(self) -> BuyerTax:
        return BuyerTax(
            business=self.business,
            vat_id=self.vat_id.replace(" ", "").upper(),
            category=TaxCategory(self.category),
            exemption_reason=self.exemption_reason,
            peppol_endpoint=self.peppol_endpoint,
            buyer_reference=self.buyer_reference,
            email=self.email,
        )


class CustomerIn(BodyModel):
    name: str
    address: AddressIn
    currency: str
    time_zone: str
    tax_rate: Decimal
    language: str = "en"
    issuer: str = "default"
    invoice_prefix: str = "INV"
    anchor_day: int = Field(1, ge=1, le=31)
    tax: TaxIn = Field(default_factory=TaxIn)

    def spec(self) -> CustomerSpec:
        a = self.address
        return CustomerSpec(
            name=self.name,
            address=Address(a.line1, a.city, a.country, a.postal_code, a.line2),
            currency=self.currency,
            time_zone=self.time_zone,
            tax_rate=self.tax_rate,
            language=self.language,
            issuer=self.issuer,
            invoice_prefix=self.invoice_prefix,
            anchor_day=self.anchor_day,
            tax=self.tax.tax(),
        )


class PlanIn(BodyModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = ""
    document: dict[str, Any]


class PlanVersionIn(BodyModel):
    document: dict[str, Any]


class SubscriptionIn(BodyModel):
    customer_id: BodyId
    series_id: BodyId
    plan_version_id: BodyId
    valid_from: When
    valid_to: When | None = None


class EndIn(BodyModel):
    at: When


class MoveIn(BodyModel):
    to_customer_id: BodyId
    at: When
    plan_version_id: BodyId | None = None


class ChangePlanIn(BodyModel):
    plan_version_id: BodyId
    at: When


# -- customers ---------------------------------------------------------------------------------


@router.post("/billing/customers", dependencies=BILLING, status_code=201)
def create_customer(
    body: CustomerIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    with http_errors():
        spec = body.spec()
    return idempotent(
        pool,
        request,
        key,
        dump(body),
        lambda c: (201, out.customer_out(accounts.create_customer(c, spec))),
    )


@router.get("/billing/customers", dependencies=READ)
def list_customers(
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    name: str | None = None,
    issuer: str | None = None,
) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        page = store.list_customers(
            conn, limit=limit, cursor=cursor, name_contains=name, issuer=issuer
        )
    return {"items": [out.customer_out(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/billing/customers/{customer_id}", dependencies=READ)
def get_customer(customer_id: Id, pool: PoolDep) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        return out.customer_out(store.get_customer(conn, customer_id))


@router.put("/billing/customers/{customer_id}", dependencies=BILLING)
def update_customer(customer_id: Id, body: CustomerIn, pool: PoolDep) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn, conn.transaction():
        return out.customer_out(accounts.update_customer(conn, customer_id, body.spec()))


@router.post(
    "/billing/customers/{customer_id}/portal-tokens",
    dependencies=BILLING,
    status_code=201,
)
def create_portal_token(customer_id: Id, pool: PoolDep) -> dict[str, Any]:
    """A new customer-portal token, shown only in this response (stored hashed)."""
    token = secrets.token_urlsafe(32)
    with http_errors(), pool.connection() as conn, conn.transaction():
        store.get_customer(conn, customer_id)
        portal.add_token(conn, customer_id, token)
    return {"customer_id": customer_id, "token": token}


@router.delete("/billing/customers/{customer_id}/portal-tokens", dependencies=BILLING)
def revoke_portal_tokens(customer_id: Id, pool: PoolDep) -> dict[str, Any]:
    """Revoke every portal token of the customer."""
    with http_errors(), pool.connection() as conn, conn.transaction():
        store.get_customer(conn, customer_id)
        revoked = portal.revoke_tokens(conn, customer_id, datetime.now(UTC))
        # sessions a browser started with a token (or a code) end with it
        signin_store.revoke_customer_sessions(conn, customer_id, datetime.now(UTC))
    return {"customer_id": customer_id, "revoked": revoked}


# -- plans -------------------------------------------------------------------------------------


@router.post("/billing/plans", dependencies=BILLING, status_code=201)
def create_plan(
    body: PlanIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    def op(c: Conn) -> tuple[int, Any]:
        plan, version = accounts.create_plan(c, body.code, body.name, body.document)
        return 201, {**out.plan_out(plan), "version": out.version_out(version)}

    return idempotent(pool, request, key, dump(body), op)


@router.get("/billing/plans", dependencies=READ)
def list_plans(
    pool: PoolDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None
) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        page = store.list_plans(conn, limit=limit, cursor=cursor)
    return {"items": [out.plan_out(p) for p in page.items], "next_cursor": page.next_cursor}


@router.get("/billing/plans/{plan_id}", dependencies=READ)
def get_plan(plan_id: Id, pool: PoolDep) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        plan = store.get_plan(conn, plan_id)
        versions = store.list_plan_versions(conn, plan_id)
    return {**out.plan_out(plan), "versions": [out.version_out(v) for v in versions]}


@router.post("/billing/plans/{plan_id}/versions", dependencies=BILLING, status_code=201)
def new_plan_version(
    plan_id: Id, body: PlanVersionIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return idempotent(
        pool,
        request,
        key,
        dump(body),
        lambda c: (201, out.version_out(accounts.new_plan_version(c, plan_id, body.document))),
    )


# -- subscriptions -----------------------------------------------------------------------------


@router.post("/billing/subscriptions", dependencies=BILLING, status_code=201)
def assign_meter(
    body: SubscriptionIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return idempotent(
        pool,
        request,
        key,
        dump(body),
        lambda c: (
            201,
            out.subscription_out(
                accounts.assign_meter(
                    c,
                    body.customer_id,
                    body.series_id,
                    body.plan_version_id,
                    body.valid_from,
                    valid_to=body.valid_to,
                )
            ),
        ),
    )


@router.get("/billing/subscriptions", dependencies=READ)
def list_subscriptions(
    *,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    customer_id: IdQuery = None,
    series_id: IdQuery = None,
    active_at: When | None = None,
) -> dict[str, Any]:
    with http_errors(), pool.connection() as conn:
        page = store.list_subscriptions(
            conn,
            limit=limit,
            cursor=cursor,
            customer_id=customer_id,
            series_id=series_id,
            active_at=active_at,
        )
    return {"items": [out.subscription_out(s) for s in page.items], "next_cursor": page.next_cursor}


@router.post("/billing/subscriptions/{subscription_id}/end", dependencies=BILLING)
def end_subscription(
    subscription_id: Id, body: EndIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return idempotent(
        pool,
        request,
        key,
        dump(body),
        lambda c: (
            200,
            out.subscription_out(accounts.end_subscription(c, subscription_id, body.at)),
        ),
    )


@router.post("/billing/subscriptions/{subscription_id}/move", dependencies=BILLING, status_code=201)
def move_meter(
    subscription_id: Id, body: MoveIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return idempotent(
        pool,
        request,
        key,
        dump(body),
        lambda c: (
            201,
            out.subscription_out(
                accounts.move_meter(
                    c, subscription_id, body.to_customer_id, body.at, body.plan_version_id
                )
            ),
        ),
    )


@router.post(
    "/billing/subscriptions/{subscription_id}/change-plan",
    dependencies=BILLING,
    status_code=201,
)
def change_plan(
    subscription_id: Id, body: ChangePlanIn, request: Request, pool: PoolDep, key: KeyHeader = None
) -> JSONResponse:
    return idempotent(
        pool,
        request,
        key,
        dump(body),
        lambda c: (
            201,
            out.subscription_out(
                accounts.change_plan(c, subscription_id, body.plan_version_id, body.at)
            ),
        ),
    )
