"""Tests of the TimescaleDB schema flavour, against the TimescaleDB sandbox.

Every test here is marked ``timescale``. ``TALLY_NO_TIMESCALE=1`` deselects them (machines
without node/npm); otherwise a missing or broken sandbox FAILS the run (CI allows no skips).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.timescale import (
    NO_TIMESCALE_ENV,
    timescale_db,
    timescale_sandbox,
    timescale_url,
)

__all__ = ["timescale_db", "timescale_sandbox", "timescale_url"]

_HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"timescale: needs the TimescaleDB sandbox (deselect: {NO_TIMESCALE_ENV}=1)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this directory's tests ``timescale``; deselect them under TALLY_NO_TIMESCALE=1."""
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.timescale)
    if os.environ.get(NO_TIMESCALE_ENV) != "1":
        return
    kept = [i for i in items if i.get_closest_marker("timescale") is None]
    dropped = [i for i in items if i.get_closest_marker("timescale") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
