"""Device identity routes: enrollments, the device-facing redemption, remote config, lifecycle.

Two routers: ``router`` is staff-only (mounted with the staff dependency; each route's docstring
names the role it is meant for: admin, technician or read-only), ``enroll_router`` is public and
authenticated by the one-time code itself (rate limited per client address).
The service (``collector.devices.service.DeviceService``) is ``app.state.devices``, built by the
runner; without it these routes answer 503.
"""

from __future__ import annotations

import base64
import io
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, NoReturn, cast

import segno
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from collector.access import Role
from collector.api.access import public, requires
from collector.api.deps import get_pool
from collector.devices.model import Device, EnrollmentPurpose, MeterSpec
from collector.devices.service import DeviceService
from collector.errors import (
    BrokerAccessError,
    DeviceError,
    DeviceNotFound,
    DeviceStateError,
    EnrollmentRefused,
    InvalidDeviceRequest,
)
from collector.storage import devices_fleet, ingest_conflicts
from collector.storage.database import Pool

__all__ = ["enroll_router", "router"]

router = APIRouter(tags=["devices"])
READ = [requires(Role.READ_ONLY)]
TECH = [requires(Role.TECHNICIAN)]
ADMIN = [requires(Role.ADMIN)]
enroll_router = APIRouter(tags=["enrollment"])

_REFUSAL_STATUS = {"malformed": 400, "secret": 400, "unknown": 404, "used": 409,
                   "expired": 410, "rate_limited": 429}


def get_devices(request: Request) -> DeviceService:
    service = getattr(request.app.state, "devices", None)
    if service is None:
        raise HTTPException(503, "device enrollment is not configured on this collector")
    return cast(DeviceService, service)


ServiceDep = Annotated[DeviceService, Depends(get_devices)]
PoolDep = Annotated[Pool, Depends(get_pool)]


def _raise(exc: DeviceError) -> NoReturn:
    if isinstance(exc, EnrollmentRefused):
        headers = {"Retry-After": "600"} if exc.kind == "rate_limited" else None
        raise HTTPException(_REFUSAL_STATUS.get(exc.kind, 400),
                            {"reason": exc.kind, "message": str(exc)}, headers=headers) from exc
    if isinstance(exc, DeviceNotFound):
        raise HTTPException(404, str(exc)) from exc
    if isinstance(exc, DeviceStateError):
        raise HTTPException(409, str(exc)) from exc
    if isinstance(exc, InvalidDeviceRequest):
        raise HTTPException(422, str(exc)) from exc
    if isinstance(exc, BrokerAccessError):
        raise HTTPException(502, f"broker: {exc}") from exc
    raise HTTPException(400, str(exc)) from exc


class MeterIn(BaseModel):
    """A meter as the agent's ``[[sources]]`` entry: type, name, interval and options."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    type: str = Field(min_length=1, max_length=64)
    interval_s: float = Field(gt=0, le=86_400)
    options: dict[str, Any] = Field(default_factory=dict)

    def spec(self) -> MeterSpec:
        return MeterSpec(self.name, self.type, self.interval_s, self.options)


class EnrollmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=128)
    site: str = Field(min_length=1, max_length=256)
    meters: list[MeterIn] = Field(default_factory=list, max_length=64)
    expires_in_s: int = Field(default=7 * 86_400, ge=60, le=90 * 86_400)
    purpose: Literal["new", "reenroll", "replace"] = "new"
    target_device: str | None = Field(default=None, max_length=64)


class EnrollmentOut(BaseModel):
    enrollment_id: int
    code: str
    expires_at: datetime
    purpose: str
    target_device: str | None
    qr_text: str
    qr_svg: str
    qr_png_base64: str


class PendingEnrollmentOut(BaseModel):
    enrollment_id: int
    customer_id: str
    site: str
    purpose: str
    target_device: str | None
    created_at: datetime
    expires_at: datetime


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=32)
    secret: str = Field(min_length=1, max_length=256)
    installation: str = Field(default="", max_length=128)
    agent_version: str = Field(default="", max_length=64)


class DeviceOut(BaseModel):
    device_id: str
    customer_id: str
    site: str
    state: str
    config_version: int
    meters: list[dict[str, Any]]
    enrolled_at: datetime
    decommissioned_at: datetime | None
    replaced_by: str | None


class RedeemOut(BaseModel):
    device_id: str
    username: str
    broker_url: str
    topics: dict[str, str]
    config_version: int
    sources: list[dict[str, Any]]
    customer_id: str
    site: str


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    meters: list[MeterIn] = Field(min_length=1, max_length=64)


def _device_out(d: Device) -> DeviceOut:
    return DeviceOut(
        device_id=d.device_id, customer_id=d.customer_id, site=d.site, state=d.state.value,
        config_version=d.config_version, meters=[m.as_source() for m in d.meters],
        enrolled_at=d.enrolled_at, decommissioned_at=d.decommissioned_at,
        replaced_by=d.replaced_by,
    )


def _qr(text: str) -> tuple[str, str]:
    qr = segno.make(text, error="m")
    svg, png = io.BytesIO(), io.BytesIO()
    qr.save(svg, kind="svg", scale=4, border=4)
    qr.save(png, kind="png", scale=6, border=4)
    return svg.getvalue().decode(), base64.b64encode(png.getvalue()).decode()


@router.post(
    "/devices/enrollments", dependencies=TECH, status_code=201, response_model=EnrollmentOut
)
def create_enrollment(body: EnrollmentIn, service: ServiceDep) -> EnrollmentOut:
    """Role: technician or admin. A one-time code (shown once) and its QR code."""
    try:
        issued = service.create_enrollment(
            body.customer_id, body.site, [m.spec() for m in body.meters],
            timedelta(seconds=body.expires_in_s), purpose=EnrollmentPurpose(body.purpose),
            target_device=body.target_device,
        )
    except DeviceError as exc:
        _raise(exc)
    svg, png = _qr(issued.qr_text)
    e = issued.enrollment
    return EnrollmentOut(
        enrollment_id=e.enrollment_id, code=issued.code, expires_at=e.expires_at,
        purpose=e.purpose.value, target_device=e.target_device, qr_text=issued.qr_text,
        qr_svg=svg, qr_png_base64=png,
    )


@router.get("/devices/enrollments", dependencies=READ, response_model=list[PendingEnrollmentOut])
def pending_enrollments(service: ServiceDep) -> list[PendingEnrollmentOut]:
    """Role: read-only. Enrollments not yet redeemed and not expired (never their codes)."""
    return [
        PendingEnrollmentOut(
            enrollment_id=e.enrollment_id, customer_id=e.customer_id, site=e.site,
            purpose=e.purpose.value, target_device=e.target_device, created_at=e.created_at,
            expires_at=e.expires_at,
        )
        for e in service.store.enrollments(pending_at=service.clock())
    ]


class FleetOut(BaseModel):
    device_id: str
    customer_id: str
    site: str
    state: str
    connection: Literal["online", "offline", "stale", "never"]
    last_seen: datetime | None
    last_status_at: datetime | None
    buffer_depth: int | None
    clock_offset_ms: int | None
    agent_version: str | None
    config_version: int
    running_config_version: int | None
    batches: int
    readings: int


@router.get("/devices/fleet", dependencies=READ, response_model=list[FleetOut])
def fleet_view(service: ServiceDep, pool: PoolDep) -> list[FleetOut]:
    """Role: read-only. Online/offline (last will), last seen, buffer depth, clock offset,
    agent and config versions of every registered device."""
    return [FleetOut(**asdict(e)) for e in devices_fleet.fleet(pool, service.clock())]


class ConflictOut(BaseModel):
    id: int
    device_id: str
    seq: int
    received_at: datetime
    topic: str
    reading_count: int
    payload_size: int
    digest: str
    stored_digest: str | None
    reason: str


@router.get("/devices/conflicts", dependencies=READ, response_model=list[ConflictOut])
def batch_conflicts(
    pool: PoolDep,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> list[ConflictOut]:
    """Role: read-only. Batches that reused a stored (device, seq) with different readings:
    kept aside with their reason, never counted (newest first)."""
    return [ConflictOut(**asdict(c)) for c in ingest_conflicts.list_conflicts(
        pool, device_id=device_id, limit=limit, before_id=before_id)]


@router.get("/devices/registry", dependencies=READ, response_model=list[DeviceOut])
def list_devices(service: ServiceDep) -> list[DeviceOut]:
    """Role: read-only. Every registered device with its state and configuration."""
    return [_device_out(d) for d in service.store.devices()]


@router.get("/devices/registry/{device_id}", dependencies=READ, response_model=DeviceOut)
def get_device(device_id: str, service: ServiceDep) -> DeviceOut:
    """Role: read-only."""
    try:
        return _device_out(service.store.device(device_id))
    except DeviceError as exc:
        _raise(exc)


@router.post(
    "/devices/registry/{device_id}/decommission", dependencies=ADMIN, response_model=DeviceOut
)
def decommission(device_id: str, service: ServiceDep) -> DeviceOut:
    """Role: admin. Revokes the device at the broker at once (its connection is dropped); its
    later batches are dead-lettered."""
    try:
        return _device_out(service.decommission(device_id))
    except DeviceError as exc:
        _raise(exc)


@router.put("/devices/registry/{device_id}/config", dependencies=TECH, response_model=DeviceOut)
def configure(device_id: str, body: ConfigIn, service: ServiceDep) -> DeviceOut:
    """Role: technician or admin. New meters/intervals, published retained with the next
    config version; the agent applies it without a restart."""
    try:
        return _device_out(service.configure(device_id, [m.spec() for m in body.meters]))
    except DeviceError as exc:
        _raise(exc)


@enroll_router.post("/enroll", dependencies=[public()], response_model=RedeemOut)
def redeem(body: RedeemIn, request: Request, service: ServiceDep) -> RedeemOut:
    """Public (the code is the credential; rate limited per client address). The device sends
    the code and a secret it made itself; it receives its identity, broker and topics."""
    client = request.client.host if request.client else "?"
    try:
        got = service.redeem(body.code, body.secret, installation=body.installation,
                             client=client)
    except DeviceError as exc:
        _raise(exc)
    d = got.device
    return RedeemOut(
        device_id=d.device_id, username=d.device_id, broker_url=got.broker_url,
        topics=got.topics.as_dict(), config_version=d.config_version,
        sources=[m.as_source() for m in d.meters], customer_id=d.customer_id, site=d.site,
    )
