"""Storage of enrollments and devices (tables ``device_enrollments``, ``devices``).

A replacement hands the old device's series to the new device (see ``redeem``).
Redemption and decommissioning take a row lock and call a hook before committing, so the broker
change (credentials created or revoked) happens inside the transaction: if the broker refuses,
nothing is recorded and the code stays usable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg

from collector.devices.model import (
    Device,
    DeviceState,
    Enrollment,
    EnrollmentPurpose,
    MeterSpec,
)
from collector.errors import DeviceNotFound, DeviceStateError

from .database import Pool, translate_errors

__all__ = [
    "DeviceStore",
    "Redemption",
]

Conn = psycopg.Connection[Any]
_SELECT_DEVICE = (
    "SELECT device_id, customer_id, site, state, meters, config_version, enrolled_at,"
    " installation, decommissioned_at, replaced_by FROM devices"
)
_SELECT_ENROLLMENT = (
    "SELECT enrollment_id, customer_id, site, meters, created_at, expires_at, purpose,"
    " target_device, redeemed_at, device_id, secret_digest FROM device_enrollments"
)


def _meters_json(meters: Sequence[MeterSpec]) -> str:
    return json.dumps([m.as_source() for m in meters])


def _meters(doc: Any) -> tuple[MeterSpec, ...]:
    return tuple(MeterSpec.from_source(m) for m in doc)


def _device(row: Sequence[Any]) -> Device:
    return Device(
        device_id=row[0], customer_id=row[1], site=row[2], state=DeviceState(row[3]),
        meters=_meters(row[4]), config_version=int(row[5]), enrolled_at=row[6],
        installation=row[7], decommissioned_at=row[8], replaced_by=row[9],
    )


def _enrollment(row: Sequence[Any]) -> Enrollment:
    return Enrollment(
        enrollment_id=int(row[0]), customer_id=row[1], site=row[2], meters=_meters(row[3]),
        created_at=row[4], expires_at=row[5], purpose=EnrollmentPurpose(row[6]),
        target_device=row[7], redeemed_at=row[8], device_id=row[9], secret_digest=row[10],
    )


class Redemption:
    """What the redemption hook sees and decides inside the transaction."""

    def __init__(self, enrollment: Enrollment, existing: Device | None) -> None:
        self.enrollment = enrollment
        # a used code: the device it enrolled; else the target of a re-enrollment/replacement
        self.existing = existing


class DeviceStore:
    """Devices and enrollments over PostgreSQL."""

    def __init__(self, pool: Pool, *, timeout_s: float = 5.0) -> None:
        self._pool = pool
        self._timeout = timeout_s

    # -- enrollments --
    def create_enrollment(self, code_digest: str, e: Enrollment) -> int:
        with translate_errors("create enrollment"), self._pool.connection(self._timeout) as conn:
            if e.target_device is not None:
                _require_device(conn, e.target_device, lock=False)
            row = conn.execute(
                "INSERT INTO device_enrollments (code_digest, customer_id, site, meters, purpose,"
                " target_device, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s) RETURNING enrollment_id",
                (code_digest, e.customer_id, e.site, _meters_json(e.meters), e.purpose.value,
                 e.target_device, e.created_at, e.expires_at),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def enrollments(self, *, pending_at: datetime | None = None) -> list[Enrollment]:
        with translate_errors("list enrollments"), self._pool.connection(self._timeout) as conn:
            rows = conn.execute(
                _SELECT_ENROLLMENT + " WHERE %s::timestamptz IS NULL"
                " OR (redeemed_at IS NULL AND expires_at > %s) ORDER BY enrollment_id",
                (pending_at, pending_at),
            ).fetchall()
        return [_enrollment(r) for r in rows]

    def redeem(
        self,
        code_digest: str,
        decide: Callable[[Redemption], Device | None],
        secret_digest: str,
        now: datetime,
        before_commit: Callable[[Device, Device | None], None],
        *,
        in_transaction: Callable[[Conn, Device, Device | None], None] | None = None,
    ) -> tuple[Device, bool] | None:
        """Redeem the code with digest ``code_digest``; ``None`` if there is no such code.

        ``decide`` returns the device to register (``None``: a retry of a redemption already
        made: the enrolled device is returned unchanged); ``before_commit(device, replaced)``
        runs before the commit (broker provisioning), after ``in_transaction(conn, device,
        replaced)`` (webhook events in the same transaction). Returns (device,
        is_new_redemption)."""
        with (
            translate_errors("redeem enrollment"),
            self._pool.connection(self._timeout) as conn,
            conn.transaction(),
        ):
            row = conn.execute(
                _SELECT_ENROLLMENT + " WHERE code_digest = %s FOR UPDATE",
                (code_digest,),
            ).fetchone()
            if row is None:
                return None
            enrollment = _enrollment(row)
            # a used code: the device it enrolled; otherwise the device it re-enrolls/replaces
            target = enrollment.device_id if enrollment.redeemed_at is not None else (
                enrollment.target_device)
            existing = _require_device(conn, target, lock=True) if target else None
            device = decide(Redemption(enrollment, existing))
            if device is None:
                assert existing is not None
                return existing, False
            replaced = None
            if enrollment.purpose is EnrollmentPurpose.REPLACE and existing is not None:
                replaced = existing
                conn.execute(
                    "UPDATE devices SET state = 'decommissioned', decommissioned_at = %s,"
                    " replaced_by = NULL WHERE device_id = %s",
                    (now, existing.device_id),
                )
            conn.execute(
                "INSERT INTO devices (device_id, customer_id, site, state, meters, config_version,"
                " enrolled_at, installation, decommissioned_at, replaced_by)"
                " VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s, NULL, NULL)"
                " ON CONFLICT (device_id) DO UPDATE SET state = EXCLUDED.state,"
                " installation = EXCLUDED.installation, decommissioned_at = NULL",
                (device.device_id, device.customer_id, device.site, device.state.value,
                 _meters_json(device.meters), device.config_version, device.enrolled_at,
                 device.installation),
            )
            if replaced is not None:
                conn.execute(
                    "UPDATE devices SET replaced_by = %s WHERE device_id = %s",
                    (device.device_id, replaced.device_id),
                )
                # The meters keep their series: the new device's readings continue the same
                # series (same series_id), so usage derivation runs across the swap (counter
                # continuity, gap estimates) and the subscriptions that bill those series go
                # on unchanged: no gap, no double count.
                conn.execute(
                    "UPDATE series SET device_id = %s WHERE device_id = %s",
                    (device.device_id, replaced.device_id),
                )
            conn.execute(
                "UPDATE device_enrollments SET redeemed_at = %s, device_id = %s,"
                " secret_digest = %s WHERE enrollment_id = %s",
                (now, device.device_id, secret_digest, enrollment.enrollment_id),
            )
            if in_transaction is not None:
                in_transaction(conn, device, replaced)
            before_commit(device, replaced)
        return device, True

    # -- devices --
    def register(self, devices: Sequence[Device]) -> None:
        """Register devices directly, without enrollment or broker credentials (demo and
        development setups whose broker is open); existing devices are left as they are."""
        with translate_errors("register devices"), self._pool.connection(self._timeout) as conn:
            for d in devices:
                conn.execute(
                    "INSERT INTO devices (device_id, customer_id, site, state, meters,"
                    " config_version, enrolled_at, installation)"
                    " VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s)"
                    " ON CONFLICT (device_id) DO NOTHING",
                    (d.device_id, d.customer_id, d.site, d.state.value, _meters_json(d.meters),
                     d.config_version, d.enrolled_at, d.installation),
                )

    def device(self, device_id: str) -> Device:
        with translate_errors("load device"), self._pool.connection(self._timeout) as conn:
            return _require_device(conn, device_id, lock=False)

    def devices(self) -> list[Device]:
        with translate_errors("list devices"), self._pool.connection(self._timeout) as conn:
            rows = conn.execute(_SELECT_DEVICE + " ORDER BY device_id")
            return [_device(r) for r in rows.fetchall()]

    def active_ids(self, device_ids: Sequence[str]) -> set[str]:
        """Which of ``device_ids`` are registered and active."""
        if not device_ids:
            return set()
        with translate_errors("check devices"), self._pool.connection(self._timeout) as conn:
            rows = conn.execute(
                "SELECT device_id FROM devices WHERE state = 'active'"
                " AND device_id = ANY(%s::text[])",
                (list(device_ids),),
            ).fetchall()
        return {str(r[0]) for r in rows}

    def decommission(
        self,
        device_id: str,
        now: datetime,
        before_commit: Callable[[Device], None],
        in_transaction: Callable[[Conn, Device], None] | None = None,
    ) -> Device:
        """Mark the device decommissioned; ``in_transaction(conn, device)`` (webhook events)
        then ``before_commit(device)`` (broker revocation) run before the commit."""
        with (
            translate_errors("decommission device"),
            self._pool.connection(self._timeout) as conn,
            conn.transaction(),
        ):
            device = _require_device(conn, device_id, lock=True)
            if device.state is DeviceState.DECOMMISSIONED:
                raise DeviceStateError(f"device {device_id} is already decommissioned")
            conn.execute(
                "UPDATE devices SET state = 'decommissioned', decommissioned_at = %s"
                " WHERE device_id = %s",
                (now, device_id),
            )
            done = _require_device(conn, device_id, lock=False)
            if in_transaction is not None:
                in_transaction(conn, done)
            before_commit(device)
            return done

    def set_meters(
        self, device_id: str, meters: Sequence[MeterSpec],
        before_commit: Callable[[Device], None],
    ) -> Device:
        """New meter configuration, next config version; ``before_commit`` publishes it."""
        with (
            translate_errors("configure device"),
            self._pool.connection(self._timeout) as conn,
            conn.transaction(),
        ):
            device = _require_device(conn, device_id, lock=True)
            if device.state is not DeviceState.ACTIVE:
                raise DeviceStateError(f"device {device_id} is {device.state.value}")
            conn.execute(
                "UPDATE devices SET meters = %s::jsonb, config_version = config_version + 1"
                " WHERE device_id = %s",
                (_meters_json(meters), device_id),
            )
            updated = _require_device(conn, device_id, lock=False)
            before_commit(updated)
            return updated


def _require_device(conn: Conn, device_id: str, *, lock: bool) -> Device:
    sql = _SELECT_DEVICE + " WHERE device_id = %s"
    row = conn.execute(sql + (" FOR UPDATE" if lock else ""), (device_id,)).fetchone()
    if row is None:
        raise DeviceNotFound(f"device {device_id!r:.80} is not registered")
    return _device(row)
