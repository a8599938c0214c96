"""What makes two batches with the same ``(device, seq)`` the same batch (pure).

A redelivery of a batch carries the same readings; anything else under the same key is a
conflict (a forged or buggy batch, or a device whose seq went backwards) and must be kept, not
dropped as a duplicate. ``batch_digest`` is SHA-256 over the readings in a canonical form: the
series sorted by (meter, metric) with unit and kind, then their timestamps (int64) and values
(float64, little-endian). Two encodings (JSON, CBOR) of the same readings have the same digest.
"""

from __future__ import annotations

import hashlib

import numpy as np

from agent.protocol import Batch

__all__ = ["batch_digest"]


def batch_digest(batch: Batch) -> bytes:
    h = hashlib.sha256()
    for s in sorted(batch.series, key=lambda s: (s.meter, s.metric)):
        h.update(f"{s.meter}\x00{s.metric}\x00{s.unit}\x00{s.kind.value}\x00{len(s)}\x00".encode())
        h.update(np.frombuffer(s.ts_ms, dtype=np.int64).astype("<i8").tobytes())
        h.update(np.frombuffer(s.values, dtype=np.float64).astype("<f8").tobytes())
    return h.digest()
