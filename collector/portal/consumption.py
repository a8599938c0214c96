"""A customer's share of a meter's usage: 15-minute usage masked to the customer's
subscription windows, then rolled up to the requested resolution in the customer's zone.

Rule (the same as billing, ``collector.billing.segments``): a 15-minute interval belongs to the
subscription that contains the interval's **start**. A meter moved to another customer at
12:07 therefore gives the 12:00 quarter hour to the old customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from collector.portal.model import Window
from collector.usage import BUCKET_15M_S, Resolution, rollup_matrix

__all__ = [
    "BucketState",
    "MeterUsage",
    "bucket_states",
    "customer_share",
    "share",
    "subscribed_mask",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MeterUsage:
    """One meter's usage for one customer on a bucket grid (Unix seconds, ``[starts, ends)``).

    ``quantity`` includes ``estimated``; ``coverage`` is the share of the *subscribed* part of
    each bucket backed by readings or estimates; ``subscribed`` the share of each bucket during
    which the customer had the meter (0 = not the customer's, values are then 0 too).
    """

    series_id: int
    resolution: Resolution
    starts: I64
    ends: I64
    quantity: F64
    estimated: F64
    coverage: F64
    subscribed: F64

    @property
    def total(self) -> float:
        return float(self.quantity.sum())

    @property
    def total_estimated(self) -> float:
        return float(self.estimated.sum())

    @property
    def estimated_share(self) -> float:
        """Estimated part of the total, 0..1 (0 when nothing was used)."""
        return share(self.total_estimated, self.total)


class BucketState(StrEnum):
    """What a bucket's figure means, so that nothing is shown as "0.00 measured" that was not
    measured: ``future`` (has not begun: empty), ``not_yours`` (the meter was someone else's),
    ``no_data`` (no reading and no estimate covers it), ``partial`` (running now, or only part
    of it covered), ``measured`` (covered from start to end)."""

    FUTURE = "future"
    NOT_YOURS = "not_yours"
    NO_DATA = "no_data"
    PARTIAL = "partial"
    MEASURED = "measured"


def bucket_states(u: MeterUsage, now: datetime) -> list[BucketState]:
    """The state of each bucket of ``u`` at ``now``."""
    t = now.timestamp()
    out: list[BucketState] = []
    for s, e, c, sub in zip(u.starts, u.ends, u.coverage, u.subscribed, strict=True):
        if s >= t:
            out.append(BucketState.FUTURE)
        elif sub <= 0:
            out.append(BucketState.NOT_YOURS)
        elif c <= 0:
            out.append(BucketState.NO_DATA)
        elif e > t or c < 1 - 1e-9:
            out.append(BucketState.PARTIAL)
        else:
            out.append(BucketState.MEASURED)
    return out


def share(part: float, whole: float) -> float:
    """``part / whole`` clipped to 0..1, 0 when ``whole`` is not positive."""
    if whole <= 0:
        return 0.0
    return min(max(part / whole, 0.0), 1.0)


def _epoch(t: datetime | None) -> float:
    return np.inf if t is None else t.timestamp()


def subscribed_mask(starts_15m: I64, windows: Sequence[Window]) -> npt.NDArray[np.bool_]:
    """True for each 15-minute bucket whose start lies in one of ``windows``."""
    mask = np.zeros(starts_15m.shape[0], dtype=np.bool_)
    for w in windows:
        mask |= (starts_15m >= w.start.timestamp()) & (starts_15m < _epoch(w.end))
    return mask


def customer_share(
    series_id: int,
    starts_15m: I64,
    *,
    quantity: F64,
    estimated: F64,
    coverage: F64,
    windows: Sequence[Window],
    resolution: Resolution | str,
    tz: str,
) -> MeterUsage:
    """Mask one meter's 15-minute usage (a contiguous UTC grid aligned to ``resolution``
    buckets in ``tz``) to ``windows`` and sum it into ``resolution`` buckets."""
    res = Resolution(resolution)
    mask = subscribed_mask(starts_15m, windows).astype(np.float64)
    stacked = np.vstack([quantity * mask, estimated * mask, coverage * mask, mask])
    if res is Resolution.M15:
        edges: I64 = np.r_[starts_15m, starts_15m[-1:] + BUCKET_15M_S].astype(np.int64)
        sums = stacked
    else:
        edges, sums = rollup_matrix(starts_15m, stacked, res, tz)
    n15 = np.diff(edges) / BUCKET_15M_S
    sub_count = sums[3]
    cov = np.divide(sums[2], sub_count, out=np.zeros_like(sub_count), where=sub_count > 0)
    return MeterUsage(
        series_id=series_id,
        resolution=res,
        starts=edges[:-1],
        ends=edges[1:],
        quantity=sums[0],
        estimated=sums[1],
        coverage=np.clip(cov, 0.0, 1.0),
        subscribed=np.clip(sub_count / n15, 0.0, 1.0),
    )
