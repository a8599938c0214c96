"""Device lifecycle webhooks on a real database: ``enrollment.done`` and
``device.decommissioned`` are written to the outbox in the transaction of the change (and
vanish with it when the change fails)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from collector.devices.broker_fake import MemoryBrokerAccess
from collector.devices.model import EnrollmentPurpose, MeterSpec
from collector.devices.service import DeviceService, ServiceSettings
from collector.errors import BrokerAccessError
from collector.storage import webhook_store
from collector.storage.database import Pool
from collector.storage.devices_store import DeviceStore
from collector.webhooks.outbox import OutboxSink

from .api_support import Clock

METER = MeterSpec("main", "simulated", 15.0, {"profile": "office"})
SECRET = "device-secret-0123456789abcdef"


def _service(pool: Pool, broker: MemoryBrokerAccess, clock: Clock) -> DeviceService:
    return DeviceService(
        DeviceStore(pool), broker, ServiceSettings("mqtts://b:8883"), clock, events=OutboxSink()
    )


def _endpoint(pool: Pool) -> None:
    with pool.connection() as conn:
        webhook_store.create_endpoint(
            conn,
            "https://erp.example/hooks",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            event_types=None,
            customer_id=None,
            description=None,
        )


def _events(pool: Pool) -> list[tuple[str, dict[str, Any]]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT event_type, payload FROM webhook_events ORDER BY created_at, event_id"
        ).fetchall()
    out = []
    for t, p in rows:
        body = p if isinstance(p, dict) else json.loads(p)
        out.append((str(t), dict(body.get("data", body))))
    return out


def test_enrollment_replacement_and_decommission_emit_events(pool: Pool) -> None:
    clock, broker = Clock(), MemoryBrokerAccess()
    svc = _service(pool, broker, clock)
    _endpoint(pool)
    issued = svc.create_enrollment("cust-1", "Depot 4", [METER], timedelta(hours=1))
    first = svc.redeem(issued.code, SECRET).device
    assert _events(pool) == [
        (
            "enrollment.done",
            {
                "device_id": first.device_id,
                "customer_id": "cust-1",
                "site": "Depot 4",
                "purpose": "new",
                "replaces": None,
                "meters": ["main"],
                "config_version": 1,
                "enrolled_at": "2026-03-01T12:00:00+00:00",
            },
        )
    ]
    svc.redeem(issued.code, SECRET)  # a retried redemption changes nothing: no new event
    assert len(_events(pool)) == 1

    clock.now += timedelta(days=1)
    swap = svc.create_enrollment(
        "cust-1",
        "Depot 4",
        [],
        timedelta(hours=1),
        purpose=EnrollmentPurpose.REPLACE,
        target_device=first.device_id,
    )
    second = svc.redeem(swap.code, SECRET + "x").device
    # both at the same instant, in one transaction; ordered by type here
    events = sorted(_events(pool)[1:], key=lambda e: e[0])
    assert [(t, d["device_id"]) for t, d in events] == [
        ("device.decommissioned", first.device_id),
        ("enrollment.done", second.device_id),
    ]
    assert events[0][1]["replaced_by"] == second.device_id
    assert events[0][1]["decommissioned_at"] == "2026-03-02T12:00:00+00:00"
    assert (events[1][1]["purpose"], events[1][1]["replaces"]) == ("replace", first.device_id)

    clock.now += timedelta(days=1)
    svc.decommission(second.device_id)
    (last,) = _events(pool)[3:]
    assert last == (
        "device.decommissioned",
        {
            "device_id": second.device_id,
            "customer_id": "cust-1",
            "site": "Depot 4",
            "decommissioned_at": "2026-03-03T12:00:00+00:00",
            "replaced_by": None,
        },
    )


class _FailingBroker(MemoryBrokerAccess):
    def revoke(self, device_id: str) -> None:
        raise BrokerAccessError("broker down")


def test_a_failed_change_leaves_no_event(pool: Pool) -> None:
    clock, broker = Clock(), _FailingBroker()
    svc = _service(pool, broker, clock)
    _endpoint(pool)
    issued = svc.create_enrollment("cust-1", "Depot 4", [METER], timedelta(hours=1))
    device = svc.redeem(issued.code, SECRET).device
    with pytest.raises(BrokerAccessError):
        svc.decommission(device.device_id)  # the broker refuses: the transaction rolls back
    assert [t for t, _ in _events(pool)] == ["enrollment.done"]
    assert svc.store.device(device.device_id).state.value == "active"
