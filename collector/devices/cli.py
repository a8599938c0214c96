"""Staff commands: ``tally-collector devices …`` (enrollments, registry, config, lifecycle).

Wiring: ``commands()`` returns the ``devices`` command for ``collector.cli`` (its
``EXTENSION_MODULES`` mechanism).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from collector.cli import Command
from collector.config import CollectorConfig, parse_mqtt_url
from collector.errors import InvalidDeviceRequest
from collector.storage.database import open_pool

from .model import EnrollmentPurpose, MeterSpec
from .wiring import dynsec_settings, service_for

__all__ = ["commands"]


def _meters(path: Path | None) -> list[MeterSpec]:
    if path is None:
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidDeviceRequest(f"cannot read meters from {path}: {exc}") from exc
    if not isinstance(doc, list) or not all(isinstance(m, dict) for m in doc):
        raise InvalidDeviceRequest(f"{path}: a JSON list of meter objects is expected")
    return [MeterSpec.from_source(m) for m in doc]


def _run(args: argparse.Namespace, config: CollectorConfig) -> int:
    if args.action == "broker-bootstrap":
        return _bootstrap(config)
    pool = open_pool(config.database.url, min_size=1, max_size=1)
    try:
        service = service_for(config.devices, pool)
        if args.action == "enroll":
            issued = service.create_enrollment(
                args.customer, args.site, _meters(args.meters),
                timedelta(hours=args.expires_hours),
                purpose=EnrollmentPurpose(args.purpose), target_device=args.device,
            )
            _write_qr(issued.qr_text, args.qr)
            print(f"code (give to the technician; shown once): {issued.code}")
            print(f"expires: {issued.enrollment.expires_at.isoformat()}")
            if args.qr:
                print(f"QR code: {args.qr}.png, {args.qr}.svg")
        elif args.action == "list":
            for d in service.store.devices():
                print(f"{d.device_id:<24} {d.state.value:<15} customer={d.customer_id} "
                      f"site={d.site!r} config=v{d.config_version} "
                      f"meters={','.join(m.name for m in d.meters)}")
        elif args.action == "decommission":
            d = service.decommission(args.device)
            print(f"{d.device_id} decommissioned; broker credentials revoked")
        elif args.action == "configure":
            d = service.configure(args.device, _meters(args.meters))
            print(f"{d.device_id}: config v{d.config_version} published")
        return 0
    finally:
        pool.close()


def _write_qr(text: str, stem: Path | None) -> None:
    if stem is None:
        return
    import segno  # noqa: PLC0415 - only when asked for

    qr = segno.make(text, error="m")
    qr.save(str(stem) + ".png", scale=8, border=4)
    qr.save(str(stem) + ".svg", scale=4, border=4)


def _bootstrap(config: CollectorConfig) -> int:
    from .broker_dynsec import DynsecBrokerAccess  # noqa: PLC0415

    ep = parse_mqtt_url(config.mqtt.url)
    if not ep.username or not ep.password:
        print("mqtt.url must carry the collector's username and password "
              "(mqtt://collector:<password>@broker:1883)", file=sys.stderr)
        return 2
    access = DynsecBrokerAccess(dynsec_settings(config.devices))
    try:
        access.bootstrap(ep.username, ep.password)
    finally:
        access.close()
    print(f"broker ready: role tally-collector for {ep.username} and the admin account")
    return 0


def _configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    e = sub.add_parser("enroll", help="create a one-time enrollment code (and QR code)")
    e.add_argument("--customer", required=True)
    e.add_argument("--site", required=True)
    e.add_argument("--meters", type=Path,
                   help="JSON list of meters: [{name, type, interval_s, ...options}]")
    e.add_argument("--expires-hours", type=float, default=168.0)
    e.add_argument("--purpose", choices=[p.value for p in EnrollmentPurpose], default="new")
    e.add_argument("--device", help="target device (reenroll, replace)")
    e.add_argument("--qr", type=Path, help="write the QR code to QR.png and QR.svg")
    sub.add_parser("list", help="registered devices")
    d = sub.add_parser("decommission", help="revoke a device at the broker at once")
    d.add_argument("device")
    c = sub.add_parser("configure", help="publish new meters/intervals to a device")
    c.add_argument("device")
    c.add_argument("--meters", type=Path, required=True)
    sub.add_parser("broker-bootstrap",
                   help="once per broker: create the collector's broker role and account")


def commands() -> Sequence[Command]:
    return [Command("devices", "device enrollment, registry and lifecycle", _run, _configure)]
