"""Billing API: issuers, the sellers named on invoices (legal name, address, VAT id, IBAN,
payment terms, Peppol endpoint). Role: billing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field

from collector.access import Role
from collector.billing.model import Address
from collector.billing.parties import Issuer
from collector.storage import billing_issuer_store as issuers

from .access import requires
from .billing_account_routes import AddressIn
from .billing_http import BodyModel, PoolDep, http_errors

__all__ = ["router"]

router = APIRouter(tags=["billing"])
READ = [requires(Role.READ_ONLY)]
BILLING = [requires(Role.BILLING)]
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class IssuerIn(BodyModel):
    name: str
    address: AddressIn
    vat_id: str
    iban: str
    bic: str = ""
    company_id: str = ""
    payment_terms_days: int = Field(14, ge=0, le=366)
    payment_note: str = ""
    email: str = ""
    phone: str = ""
    peppol_endpoint: str = ""

    def issuer(self, code: str) -> Issuer:
        a = self.address
        return Issuer(
            code=code,
            name=self.name,
            address=Address(a.line1, a.city, a.country, a.postal_code, a.line2),
            vat_id=self.vat_id.replace(" ", "").upper(),
            iban=self.iban.replace(" ", "").upper(),
            bic=self.bic.replace(" ", "").upper(),
            company_id=self.company_id,
            payment_terms_days=self.payment_terms_days,
            payment_note=self.payment_note,
            email=self.email,
            phone=self.phone,
            peppol_endpoint=self.peppol_endpoint,
        )


@router.put("/billing/issuers/{code}", dependencies=BILLING)
def put_issuer(code: Code, body: IssuerIn, pool: PoolDep) -> dict[str, Any]:
    """Create or replace issuer ``code`` (customers name it in ``issuer``). Drafts pick the new
    details up when they are re-drafted or finalized; final invoices keep theirs. Role: billing.
    """
    with http_errors():
        issuer = body.issuer(code)
    with http_errors(), pool.connection() as conn, conn.transaction():
        return issuers.put_issuer(conn, issuer).to_json()


@router.get("/billing/issuers", dependencies=READ)
def list_issuers(pool: PoolDep) -> dict[str, Any]:
    """Every configured issuer. Role: billing."""
    with http_errors(), pool.connection() as conn:
        return {"items": [i.to_json() for i in issuers.list_issuers(conn)]}


@router.get("/billing/issuers/{code}", dependencies=READ)
def get_issuer(code: Code, pool: PoolDep) -> dict[str, Any]:
    """One issuer. Role: billing."""
    with http_errors(), pool.connection() as conn:
        return issuers.get_issuer(conn, code).to_json()
