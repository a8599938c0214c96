"""Shared pieces of the device API tests: constants, a settable clock, enrollment helper."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

SECRET = "agent-made-secret-0123456789abcdef"
METERS = [{"name": "main", "type": "simulated", "interval_s": 15,
           "options": {"profile": "office"}}]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def enroll_code_doc(client: TestClient, **extra: object) -> dict[str, object]:
    body = {"customer_id": "cust-1", "site": "Depot 4", "meters": METERS, **extra}
    r = client.post("/devices/enrollments", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())
