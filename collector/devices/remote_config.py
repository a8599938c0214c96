"""The configuration document a device receives on ``tally/v1/<device>/config`` (retained).

``{"v": 1, "device_id": …, "version": n, "issued_at": ISO-8601, "sources": [...]}``: ``version``
grows by one with every change, so an agent applies a document only when its version is newer
than the one it runs and reports that version in its status.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from .model import MeterSpec

__all__ = ["config_document"]


def config_document(
    device_id: str, version: int, meters: Sequence[MeterSpec], issued_at: datetime
) -> bytes:
    return json.dumps(
        {"v": 1, "device_id": device_id, "version": version,
         "issued_at": issued_at.isoformat(), "sources": [m.as_source() for m in meters]},
        separators=(",", ":"), allow_nan=False,
    ).encode()
