"""Device and enrollment records, and the lifecycle rules between them (pure, time passed in).

A device is ``active`` from its enrollment until it is ``decommissioned`` (credentials revoked at
the broker; its batches are dead-lettered from then on). Replacing a device decommissions the old
one and moves its meters to the new one. An enrollment is a one-time code for one device: a new
device, a re-enrollment of an existing one (wiped disk: same device id, new secret) or a
replacement (new device id taking over an old one's meters).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from collector.errors import EnrollmentRefused, InvalidDeviceRequest

__all__ = [
    "Device",
    "DeviceState",
    "Enrollment",
    "EnrollmentPurpose",
    "MeterSpec",
    "check_meters",
    "check_redeemable",
    "new_device_id",
    "validate_secret",
]

ID_RE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MIN_SECRET_LENGTH: Final = 24
MAX_SECRET_LENGTH: Final = 256
MAX_ENROLLMENT_LIFETIME: Final = timedelta(days=90)
MAX_METERS: Final = 64


class DeviceState(StrEnum):
    ACTIVE = "active"
    DECOMMISSIONED = "decommissioned"


class EnrollmentPurpose(StrEnum):
    NEW = "new"
    REENROLL = "reenroll"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """One meter the device reads: the agent's ``[[sources]]`` entry (type, name, interval, and
    the type's own options)."""

    name: str
    type: str
    interval_s: float
    options: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not ID_RE.match(self.name):
            raise InvalidDeviceRequest(f"meter name {self.name!r:.80}: 1-64 of [A-Za-z0-9._:-]")
        if not self.type or len(self.type) > 64:
            raise InvalidDeviceRequest(f"meter {self.name}: type must be 1-64 characters")
        if not 0 < self.interval_s <= 86_400:
            raise InvalidDeviceRequest(f"meter {self.name}: interval_s must be in (0, 86400]")
        reserved = {"name", "type", "interval_s"} & set(self.options)
        if reserved:
            raise InvalidDeviceRequest(f"meter {self.name}: options may not set {sorted(reserved)}")
        try:
            json.dumps(dict(self.options), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidDeviceRequest(f"meter {self.name}: options must be JSON") from exc

    def as_source(self) -> dict[str, object]:
        """The agent's source entry (``{"type", "name", "interval_s", **options}``)."""
        return {"type": self.type, "name": self.name, "interval_s": self.interval_s,
                **dict(self.options)}

    @classmethod
    def from_source(cls, doc: Mapping[str, object]) -> MeterSpec:
        rest = {k: v for k, v in doc.items() if k not in {"name", "type", "interval_s"}}
        interval = doc.get("interval_s")
        if not isinstance(interval, int | float) or isinstance(interval, bool):
            raise InvalidDeviceRequest("meter interval_s must be a number")
        return cls(str(doc.get("name", "")), str(doc.get("type", "")), float(interval), rest)


def check_meters(meters: tuple[MeterSpec, ...]) -> tuple[MeterSpec, ...]:
    if len(meters) > MAX_METERS:
        raise InvalidDeviceRequest(f"at most {MAX_METERS} meters per device")
    names = [m.name for m in meters]
    if len(set(names)) != len(names):
        raise InvalidDeviceRequest("meter names must be unique on a device")
    return meters


@dataclass(frozen=True, slots=True)
class Enrollment:
    """A pending or used one-time code (only its digest is ever stored)."""

    enrollment_id: int
    customer_id: str
    site: str
    meters: tuple[MeterSpec, ...]
    created_at: datetime
    expires_at: datetime
    purpose: EnrollmentPurpose = EnrollmentPurpose.NEW
    target_device: str | None = None  # re-enrollment: this device; replacement: the old one
    redeemed_at: datetime | None = None
    device_id: str | None = None  # the device the code enrolled
    secret_digest: str | None = None  # digest of the secret it was redeemed with


@dataclass(frozen=True, slots=True)
class Device:
    """A registered device."""

    device_id: str
    customer_id: str
    site: str
    state: DeviceState
    meters: tuple[MeterSpec, ...]
    config_version: int
    enrolled_at: datetime
    installation: str = ""
    decommissioned_at: datetime | None = None
    replaced_by: str | None = None


def new_device_id() -> str:
    """A fresh device id (``dev-`` and 16 hex digits)."""
    return "dev-" + secrets.token_hex(8)


def validate_secret(secret: str) -> str:
    """The agent-made broker password: long, printable ASCII, no spaces."""
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH or not all(
        33 <= ord(c) < 127 for c in secret
    ):
        raise EnrollmentRefused(
            "secret",
            f"the device secret must be {MIN_SECRET_LENGTH}-{MAX_SECRET_LENGTH} printable ASCII"
            " characters without spaces",
        )
    return secret


def check_redeemable(enrollment: Enrollment, now: datetime, secret_digest: str) -> bool:
    """Whether ``enrollment`` may be redeemed now; ``True`` means it is a retry of the same
    redemption (same secret): answer with the device it already enrolled.

    Raises ``EnrollmentRefused`` (expired, used) otherwise."""
    if enrollment.redeemed_at is not None:
        if enrollment.secret_digest is not None and secrets.compare_digest(
            enrollment.secret_digest, secret_digest
        ):
            return True
        raise EnrollmentRefused("used", "this enrollment code has already been used")
    if now >= enrollment.expires_at:
        raise EnrollmentRefused("expired", "this enrollment code has expired")
    return False
