"""Pure clipping of a meter's 15-minute usage to a customer's subscription windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from collector.portal.consumption import customer_share, subscribed_mask
from collector.portal.model import PortalMeter, Window

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _grid(days: int) -> npt.NDArray[np.int64]:
    return np.arange(int(T0.timestamp()), int(T0.timestamp()) + days * 86400, 900, dtype=np.int64)


def test_bucket_belongs_to_the_window_containing_its_start() -> None:
    """A window ending at 00:07 keeps the 00:00 quarter hour; one starting then gets 00:15."""
    starts = _grid(1)[:3]
    cut = T0 + timedelta(minutes=7)
    assert subscribed_mask(starts, [Window(T0, cut)]).tolist() == [True, False, False]
    assert subscribed_mask(starts, [Window(cut, None)]).tolist() == [False, True, True]


def test_daily_rollup_in_the_customer_zone() -> None:
    """In UTC+14 a local day is 10:00Z to 10:00Z: its 96 quarter hours make one bucket."""
    starts = _grid(2)[40:]  # 10:00Z on 1 March onwards: local midnights
    q = np.ones(starts.shape[0])
    u = customer_share(
        1,
        starts[: 96 * 1],
        quantity=q[:96],
        estimated=np.zeros(96),
        coverage=np.ones(96),
        windows=[Window(T0, None)],
        resolution="1d",
        tz="Pacific/Kiritimati",
    )
    assert u.quantity.tolist() == [96.0]
    assert u.starts.tolist() == [int(T0.timestamp()) + 10 * 3600]


@given(
    cut_q=st.integers(min_value=0, max_value=2 * 96),
    offset_s=st.integers(min_value=0, max_value=899),
    values=st.lists(st.floats(0, 100), min_size=2 * 96, max_size=2 * 96),
)
def test_two_customers_shares_add_up_to_the_meter(
    cut_q: int, offset_s: int, values: list[float]
) -> None:
    """Whatever the move instant, old + new customer's shares equal the meter's usage."""
    starts = _grid(2)
    q = np.asarray(values)
    est = q / 2
    cut = T0 + timedelta(seconds=cut_q * 900 + offset_s)
    old, new = (
        customer_share(
            1,
            starts,
            quantity=q,
            estimated=est,
            coverage=np.ones_like(q),
            windows=[w],
            resolution="1h",
            tz="UTC",
        )
        for w in (Window(T0, cut), Window(cut, None))
    )
    np.testing.assert_allclose(old.quantity + new.quantity, q.reshape(-1, 4).sum(axis=1))
    np.testing.assert_allclose(old.estimated + new.estimated, est.reshape(-1, 4).sum(axis=1))
    np.testing.assert_allclose(old.subscribed + new.subscribed, 1.0)
    assert np.isclose(old.total, q[: cut_q + (offset_s > 0)].sum())


def test_coverage_is_of_the_subscribed_part() -> None:
    """An hour half-subscribed, with data in the subscribed half, is fully covered."""
    starts = _grid(1)[:4]
    u = customer_share(
        1,
        starts,
        quantity=np.ones(4),
        estimated=np.zeros(4),
        coverage=np.array([1.0, 1.0, 0.0, 0.0]),
        windows=[Window(T0, T0 + timedelta(minutes=30))],
        resolution="1h",
        tz="UTC",
    )
    assert u.quantity.tolist() == [2.0]
    assert u.coverage.tolist() == [1.0]
    assert u.subscribed.tolist() == [0.5]


def test_adjacent_windows_cover_a_range_gaps_do_not() -> None:
    """A plan change (back-to-back windows) covers the month; a day without the meter does not."""
    mid, end = T0 + timedelta(days=14, minutes=7), T0 + timedelta(days=31)
    whole = PortalMeter(1, "d", "m", "e", "kWh", "cumulative", (Window(mid, None), Window(T0, mid)))
    gap = PortalMeter(
        1,
        "d",
        "m",
        "e",
        "kWh",
        "cumulative",
        (Window(T0, mid), Window(mid + timedelta(days=1), None)),
    )
    assert whole.covers(T0, end)
    assert not gap.covers(T0, end)
    assert gap.covers(T0, mid)
    assert not whole.covers(T0 - timedelta(minutes=15), end)


def test_usage_unit_of_a_gauge_is_its_time_integral() -> None:
    """A kW gauge's usage is in kWh, a m³/h gauge's in m³/h·h; a counter keeps its unit."""

    def meter(kind: str, unit: str) -> PortalMeter:
        return PortalMeter(1, "d", "m", "e", unit, kind, (Window(T0, None),))

    assert meter("gauge", "kW").usage_unit == "kWh"
    assert meter("gauge", "m³/h").usage_unit == "m³/h·h"
    assert meter("cumulative", "kWh").usage_unit == "kWh"
    assert meter("delta", "m³").usage_unit == "m³"
