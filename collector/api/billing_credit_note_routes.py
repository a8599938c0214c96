"""Billing API: the credit notes of an invoice and their documents (JSON, HTML, PDF, UBL
CreditNote, CII 381, Factur-X). Credit notes are issued by the finalize run; they are never
drafts. Role: billing."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response

from collector.access import Role
from collector.billing import documents
from collector.errors import NotFound
from collector.storage import billing_credit_note_store as credit_notes
from collector.storage import billing_invoice_store as invoices

from .access import requires
from .billing_http import PoolDep, http_errors
from .params import Id

__all__ = ["router"]

router = APIRouter(tags=["billing"])
READ = [requires(Role.READ_ONLY)]

Format = Literal["json", "html", "pdf", "ubl", "cii", "facturx"]


@router.get("/invoices/{invoice_id}/credit-notes", dependencies=READ)
def list_credit_notes(invoice_id: Id, pool: PoolDep) -> dict[str, Any]:
    """The credit notes that correct this invoice, oldest first. Role: billing."""
    with http_errors(), pool.connection() as conn:
        invoices.get_invoice(conn, invoice_id, with_lines=False)
        items = credit_notes.list_for_invoice(conn, invoice_id)
    return {
        "items": [
            {
                "credit_note_id": c.credit_note_id,
                "number": c.number,
                "issued_at": c.issued_at.isoformat(),
                "currency": c.currency,
                "subtotal": str(c.subtotal),
                "tax": str(c.tax),
                "total": str(c.total),
                "reason": c.reason,
            }
            for c in items
        ]
    }


@router.get("/invoices/{invoice_id}/credit-notes/{credit_note_id}", dependencies=READ)
def get_credit_note(
    invoice_id: Id, credit_note_id: Id, pool: PoolDep, format: Format = "json"
) -> Response:
    """One credit note of this invoice as JSON (default), HTML, PDF, UBL 2.1 CreditNote, CII
    (type 381) or Factur-X (``?format=``). Role: billing."""
    with http_errors(), pool.connection() as conn:
        cn = credit_notes.get_credit_note(conn, credit_note_id)
        if cn.corrects_invoice_id != invoice_id:
            raise NotFound(f"credit note {credit_note_id} does not correct invoice {invoice_id}")
        data = documents.render_credit_note(conn, credit_note_id, format)
    media, suffix = documents.MEDIA[format]
    headers = {}
    if format not in ("json", "html"):
        headers["Content-Disposition"] = (
            f'attachment; filename="credit-note-{credit_note_id}.{suffix}"'
        )
    return Response(data, media_type=media, headers=headers)
