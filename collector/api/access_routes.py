"""Staff keys and the audit log over HTTP (admin only), and ``/staff/me`` for any staff key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from collector.access import AuditEntry, Principal, Role, StaffKey, issue_key
from collector.errors import InvalidKey, UnknownKey
from collector.storage import access_store
from collector.storage.database import Pool

from .access import requires
from .access_gate import StaffGate
from .deps import get_pool
from .params import When

__all__ = ["router"]

router = APIRouter(tags=["staff access"])
PoolDep = Annotated[Pool, Depends(get_pool)]
Admin = Annotated[Principal, requires(Role.ADMIN)]
Staff = Annotated[Principal, requires(Role.READ_ONLY)]
MAX_DAYS = 3660


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
    role: Role
    expires_in_days: float | None = Field(None, gt=0, le=MAX_DAYS)


class KeyOut(BaseModel):
    key_id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="The key itself, shown only in this response.")


class KeyList(BaseModel):
    items: list[KeyOut]


class MeOut(BaseModel):
    actor: str
    role: Role
    key_id: str | None
    expires_at: datetime | None


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str | None
    method: str
    path: str
    status: int
    outcome: str
    client: str | None
    target: str | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_before: int | None


def _gate(request: Request) -> StaffGate:
    return cast(StaffGate, request.app.state.staff_gate)


def _now(request: Request) -> datetime:
    clock = getattr(request.app.state, "clock", None)
    return clock() if callable(clock) else datetime.now(UTC)


def _out(k: StaffKey) -> KeyOut:
    return KeyOut(key_id=k.key_id, name=k.name, role=k.role, created_at=k.created_at,
                  created_by=k.created_by, expires_at=k.expires_at, revoked_at=k.revoked_at)


@router.get("/staff/me", response_model=MeOut)
def me(who: Staff) -> MeOut:
    """Who the presented key is, and its role."""
    return MeOut(actor=who.actor, role=who.role, key_id=who.key_id, expires_at=who.expires_at)


@router.post("/staff/keys", status_code=201, response_model=NewKeyOut)
def create_key(body: KeyIn, request: Request, pool: PoolDep, who: Admin) -> NewKeyOut:
    """A new staff key with a role and an optional expiry; the key is shown only here."""
    now = _now(request)
    expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    try:
        issued = issue_key(role=body.role, name=body.name, now=now, created_by=who.actor,
                           expires_at=expires)
    except InvalidKey as exc:
        raise HTTPException(422, str(exc)) from exc
    with pool.connection() as conn:
        access_store.add_key(conn, issued)
    _gate(request).key_created()
    request.state.audit_target = f"key:{issued.key.key_id}"
    return NewKeyOut(**_out(issued.key).model_dump(), key=issued.secret)


@router.get("/staff/keys", response_model=KeyList)
def list_keys(
    pool: PoolDep, _: Admin, include_revoked: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> KeyList:
    """Staff keys, newest first (never the keys themselves)."""
    with pool.connection() as conn:
        keys = access_store.list_keys(conn, include_revoked=include_revoked, limit=limit)
    return KeyList(items=[_out(k) for k in keys])


@router.delete("/staff/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: str, request: Request, pool: PoolDep, _: Admin) -> KeyOut:
    """Revoke a key; every collector process refuses it within ``api.key_cache_s`` (this one
    at once)."""
    request.state.audit_target = f"key:{key_id[:40]}"
    try:
        with pool.connection() as conn:
            k = access_store.revoke_key(conn, key_id, _now(request))
    except UnknownKey as exc:
        raise HTTPException(404, str(exc)) from exc
    _gate(request).revoked(k.key_id)
    return _out(k)


@router.get("/audit", response_model=AuditPage)
def audit_log(
    pool: PoolDep,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    actor: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$")] = None,
    since: When | None = None,
) -> AuditPage:
    """State-changing calls, newest first: who, what, when, outcome; ``before=next_before``
    pages on."""
    with pool.connection() as conn:
        rows = access_store.list_audit(conn, limit=limit, before_id=before, actor=actor,
                                       since=since)
    return AuditPage(
        items=[_audit(e) for e in rows],
        next_before=rows[-1].id if len(rows) == limit else None,
    )


def _audit(e: AuditEntry) -> AuditOut:
    return AuditOut(id=e.id or 0, at=e.at, actor=e.actor, role=e.role, method=e.method,
                    path=e.path, status=e.status, outcome=e.outcome, client=e.client,
                    target=e.target)
