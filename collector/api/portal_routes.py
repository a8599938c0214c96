"""Customer portal: a customer sees its own final invoices, documents and line explanations.

Authentication: ``Authorization: Bearer <portal token>`` (staff create tokens with
``POST /billing/customers/{id}/portal-tokens``). Drafts and other customers' invoices are
invisible: they answer 404, exactly like invoices that do not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import Response

from collector.billing import documents
from collector.billing import serialize as out
from collector.billing.model import InvoiceStatus
from collector.errors import NotFound
from collector.storage import billing_invoice_store as invoices
from collector.storage import billing_portal_store as portal
from collector.storage.database import Pool

from .deps import get_pool

__all__ = ["router"]

router = APIRouter(prefix="/portal", tags=["portal"])
PoolDep = Annotated[Pool, Depends(get_pool)]
_MEDIA = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}


def _customer(pool: Pool, authorization: str | None) -> int:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "portal token required", headers={"WWW-Authenticate": "Bearer"})
    try:
        with pool.connection() as conn:
            return portal.customer_for_token(conn, authorization.removeprefix("Bearer ").strip())
    except NotFound as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


AuthHeader = Annotated[str | None, Header()]


def _own_final_invoice(pool: Pool, customer_id: int, invoice_id: int) -> None:
    try:
        with pool.connection() as conn:
            inv = invoices.get_invoice(conn, invoice_id, with_lines=False)
    except NotFound as exc:
        raise HTTPException(404, "invoice not found") from exc
    if inv.customer_id != customer_id or inv.status is not InvoiceStatus.FINAL:
        raise HTTPException(404, "invoice not found")


@router.get("/invoices")
def my_invoices(
    *,
    pool: PoolDep,
    authorization: AuthHeader = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The customer's final invoices, oldest first."""
    customer_id = _customer(pool, authorization)
    with pool.connection() as conn:
        page = invoices.list_invoices(
            conn, limit=limit, cursor=cursor, customer_id=customer_id, status=InvoiceStatus.FINAL
        )
    return {
        "items": [out.invoice_summary(i) for i in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/invoices/{invoice_id}")
def my_invoice(
    invoice_id: int,
    *,
    pool: PoolDep,
    authorization: AuthHeader = None,
    format: Literal["json", "html", "pdf", "csv"] = "json",
) -> Response:
    """One of the customer's final invoices as JSON, HTML, PDF or CSV."""
    customer_id = _customer(pool, authorization)
    _own_final_invoice(pool, customer_id, invoice_id)
    with pool.connection() as conn:
        data = documents.render(conn, invoice_id, format)
    return Response(data, media_type=_MEDIA[format])


@router.get("/invoices/{invoice_id}/lines/{line_id}/explain")
def my_line_explained(
    invoice_id: int, line_id: int, *, pool: PoolDep, authorization: AuthHeader = None
) -> dict[str, Any]:
    """Why am I billed this (without the internal plan document)."""
    customer_id = _customer(pool, authorization)
    _own_final_invoice(pool, customer_id, invoice_id)
    try:
        with pool.connection() as conn:
            why = documents.explain(conn, invoice_id, line_id)
    except NotFound as exc:
        raise HTTPException(404, "line not found") from exc
    if why.get("plan"):
        why["plan"] = {k: v for k, v in why["plan"].items() if k != "document"}
    return why
