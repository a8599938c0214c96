"""Webhook payloads of device lifecycle events (pure): ``enrollment.done`` when a device
finishes enrollment, ``device.decommissioned`` when one is retired (by staff, or replaced by a
new device). Emitted by ``DeviceService`` through its ``EventSink`` in the transaction that
makes the change (docs/webhooks.md)."""

from __future__ import annotations

from typing import Any

from .model import Device, EnrollmentPurpose


def enrollment_done(
    device: Device, purpose: EnrollmentPurpose, replaced: Device | None
) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "customer_id": device.customer_id,
        "site": device.site,
        "purpose": purpose.value,
        "replaces": None if replaced is None else replaced.device_id,
        "meters": [m.name for m in device.meters],
        "config_version": device.config_version,
        "enrolled_at": device.enrolled_at.isoformat(),
    }


def decommissioned(device: Device, *, replaced_by: str | None = None) -> dict[str, Any]:
    at = device.decommissioned_at
    return {
        "device_id": device.device_id,
        "customer_id": device.customer_id,
        "site": device.site,
        "decommissioned_at": None if at is None else at.isoformat(),
        "replaced_by": replaced_by or device.replaced_by,
    }
