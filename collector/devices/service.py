"""Enrollment, remote configuration and lifecycle: storage and broker changes together.

Used by the API routes and the CLI. The clock is injected; the broker is a ``BrokerAccess``
(``broker_dynsec`` in production, ``broker_fake`` in tests).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

from collector.errors import DeviceStateError, EnrollmentRefused, InvalidDeviceRequest
from collector.storage.devices_store import Conn, DeviceStore, Redemption
from collector.webhooks.events import EventSink, EventType

from . import lifecycle_events
from .broker_port import BrokerAccess
from .codes import code_digest, new_code
from .guessing import AttemptLimiter
from .model import (
    MAX_ENROLLMENT_LIFETIME,
    Device,
    DeviceState,
    Enrollment,
    EnrollmentPurpose,
    MeterSpec,
    check_meters,
    check_redeemable,
    new_device_id,
    validate_secret,
)
from .remote_config import config_document
from .topics import DeviceTopics

__all__ = ["DeviceService", "EnrolledDevice", "IssuedEnrollment", "ServiceSettings"]


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    broker_url: str  # what devices connect to (mqtts://… in production)
    public_url: str = ""  # the collector URL a device enrolls at (put into the QR code)


@dataclass(frozen=True, slots=True)
class IssuedEnrollment:
    """A created enrollment; ``code`` is shown once and never stored."""

    enrollment: Enrollment
    code: str
    qr_text: str


@dataclass(frozen=True, slots=True)
class EnrolledDevice:
    """What a device receives when its code is redeemed."""

    device: Device
    broker_url: str
    topics: DeviceTopics
    fresh: bool  # False: a retried redemption answered with the same device


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class DeviceService:
    store: DeviceStore
    broker: BrokerAccess
    settings: ServiceSettings
    clock: Callable[[], datetime]
    limiter: AttemptLimiter = field(default_factory=AttemptLimiter)
    # enrollment.done / device.decommissioned, in the change's transaction (None: not emitted)
    events: EventSink | None = None
    # The API serves requests from a thread pool; the limiter is plain data.
    _limiter_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _allowed(self, client: str, now_s: float) -> bool:
        with self._limiter_lock:
            return self.limiter.allowed(client, now_s)

    def _failed(self, client: str, now_s: float) -> None:
        with self._limiter_lock:
            self.limiter.failed(client, now_s)

    def create_enrollment(
        self,
        customer_id: str,
        site: str,
        meters: Sequence[MeterSpec],
        lifetime: timedelta,
        *,
        purpose: EnrollmentPurpose = EnrollmentPurpose.NEW,
        target_device: str | None = None,
    ) -> IssuedEnrollment:
        if not timedelta(minutes=1) <= lifetime <= MAX_ENROLLMENT_LIFETIME:
            raise InvalidDeviceRequest("expiry must be between 1 minute and 90 days ahead")
        if not customer_id or not site:
            raise InvalidDeviceRequest("customer_id and site are required")
        if (purpose is EnrollmentPurpose.NEW) != (target_device is None):
            raise InvalidDeviceRequest("re-enrollment and replacement name the target device")
        if purpose is EnrollmentPurpose.NEW and not meters:
            raise InvalidDeviceRequest("a new device needs at least one meter")
        now = self.clock()
        code = new_code()
        enrollment = Enrollment(
            enrollment_id=0, customer_id=customer_id, site=site,
            meters=check_meters(tuple(meters)), created_at=now, expires_at=now + lifetime,
            purpose=purpose, target_device=target_device,
        )
        eid = self.store.create_enrollment(code_digest(code), enrollment)
        query = {"code": code, **({"collector": self.settings.public_url}
                                  if self.settings.public_url else {})}
        return IssuedEnrollment(
            replace(enrollment, enrollment_id=eid), code,
            "tally-enroll:?" + urlencode(query),
        )

    def redeem(
        self, code: str, secret: str, *, installation: str = "", client: str = "?"
    ) -> EnrolledDevice:
        """Redeem a code with the device's own secret; raises ``EnrollmentRefused``."""
        now = self.clock()
        now_s = now.timestamp()
        if not self._allowed(client, now_s):
            raise EnrollmentRefused(
                "rate_limited", "too many failed enrollment attempts; try again later"
            )
        validate_secret(secret)
        try:
            digest = code_digest(code)
        except EnrollmentRefused:
            self._failed(client, now_s)
            raise
        sdigest = secret_digest(secret)
        purpose: list[EnrollmentPurpose] = []

        def decide(r: Redemption) -> Device | None:
            purpose[:] = [r.enrollment.purpose]
            if check_redeemable(r.enrollment, now, sdigest):
                if r.existing is None or r.existing.state is not DeviceState.ACTIVE:
                    # never bring a decommissioned identity back through an old code
                    raise EnrollmentRefused("used", "this enrollment code has already been used")
                return None
            return _device_for(r, now, installation[:128])

        def before_commit(device: Device, replaced: Device | None) -> None:
            self.broker.provision(device.device_id, secret)
            if replaced is not None:
                self._retire(replaced)
            self._publish_config(device)

        def emit(conn: Conn, device: Device, replaced: Device | None) -> None:
            if self.events is None:
                return
            if replaced is not None:
                gone = replace(
                    replaced, state=DeviceState.DECOMMISSIONED, decommissioned_at=now
                )
                self.events.emit(
                    conn,
                    EventType.DEVICE_DECOMMISSIONED,
                    lifecycle_events.decommissioned(gone, replaced_by=device.device_id),
                    at=now,
                )
            self.events.emit(
                conn,
                EventType.ENROLLMENT_DONE,
                lifecycle_events.enrollment_done(device, purpose[0], replaced),
                at=now,
            )

        result = self.store.redeem(
            digest, decide, sdigest, now, before_commit, in_transaction=emit
        )
        if result is None:
            self._failed(client, now_s)
            raise EnrollmentRefused("unknown", "unknown enrollment code")
        device, fresh = result
        if not fresh:  # a retry: make sure the broker has the (same) secret
            self.broker.provision(device.device_id, secret)
        return EnrolledDevice(device, self.settings.broker_url, DeviceTopics(device.device_id),
                              fresh)

    def decommission(self, device_id: str) -> Device:
        """Revoke the device at the broker (its connection is dropped) and mark it."""
        now = self.clock()

        def emit(conn: Conn, device: Device) -> None:
            if self.events is not None:
                self.events.emit(
                    conn,
                    EventType.DEVICE_DECOMMISSIONED,
                    lifecycle_events.decommissioned(device),
                    at=now,
                )

        return self.store.decommission(device_id, now, self._retire, emit)

    def _retire(self, device: Device) -> None:
        """Revoke at the broker and clear the retained config and acknowledgement (an empty
        retained message deletes it), so nothing lingers at the broker for an identity that no
        longer exists."""
        topics = DeviceTopics(device.device_id)
        self.broker.revoke(device.device_id)
        self.broker.publish_retained(topics.config, b"")
        self.broker.publish_retained(topics.ack, b"")

    def configure(self, device_id: str, meters: Sequence[MeterSpec]) -> Device:
        """New meters/intervals: stored with the next version and published, retained."""
        return self.store.set_meters(device_id, check_meters(tuple(meters)), self._publish_config)

    def _publish_config(self, device: Device) -> None:
        self.broker.publish_retained(
            DeviceTopics(device.device_id).config,
            config_document(device.device_id, device.config_version, device.meters,
                            self.clock()),
        )


def _device_for(r: Redemption, now: datetime, installation: str) -> Device:
    e = r.enrollment
    if e.purpose is EnrollmentPurpose.REENROLL:
        old = r.existing
        assert old is not None
        if old.state is not DeviceState.ACTIVE:
            raise DeviceStateError(
                f"device {old.device_id} is decommissioned; enroll a replacement instead"
            )
        return Device(old.device_id, old.customer_id, old.site, DeviceState.ACTIVE, old.meters,
                      old.config_version, old.enrolled_at, installation)
    meters = e.meters
    if e.purpose is EnrollmentPurpose.REPLACE:
        old = r.existing
        assert old is not None
        if old.state is not DeviceState.ACTIVE:
            raise DeviceStateError(f"device {old.device_id} is already decommissioned")
        meters = meters or old.meters
    return Device(new_device_id(), e.customer_id, e.site, DeviceState.ACTIVE, meters, 1, now,
                  installation)
