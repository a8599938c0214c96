"""Webhook fixtures: the billing fixtures plus a real HTTP receiver that verifies signatures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.collector.billing.conftest import conn, db, pool
from tests.collector.webhooks.receiver import Receiver

__all__ = ["conn", "db", "pool", "receiver"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()
