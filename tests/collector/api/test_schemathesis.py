"""schemathesis, a client nobody here wrote, against the collector's OpenAPI document: every
operation, with staff (admin) and customer (portal) credentials. No server error and no
answer that contradicts the schema (status codes, content types, bodies)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from collector.access import Role
from collector.api.app import create_app
from collector.billing import accounts
from collector.devices.broker_fake import MemoryBrokerAccess
from collector.devices.guessing import AttemptLimiter
from collector.devices.service import DeviceService, ServiceSettings
from collector.storage import billing_portal_store
from collector.storage.database import Pool, open_pool
from collector.storage.devices_store import DeviceStore
from collector.storage.migrate import migrate
from tests.collector.access.conftest import make_key
from tests.collector.billing.conftest import spec
from tests.collector.devices.api_support import Clock

EXAMPLES = 30
# Left out: "schema-valid request rejected" (the schema cannot say everything the server
# checks: ``to`` after ``from``, a known time zone, an existing plan; a 4xx for such input is
# right) and "schema-violating request accepted" (it counts unknown query parameters, which
# HTTP APIs ignore, as violations). Invalid input is still generated (negative mode) and must
# get a documented 4xx, never a 5xx.
EXCLUDED = [positive_data_acceptance, negative_data_rejection]


@pytest.fixture
def pool(pg_url: str) -> Iterator[Pool]:
    migrate(pg_url, use_timescale=False)
    p = open_pool(pg_url, min_size=1, max_size=4)
    p.wait(10)
    yield p
    p.close()


def _customer_token(pool: Pool) -> str:
    token = secrets.token_urlsafe(32)
    with pool.connection() as conn:
        customer = accounts.create_customer(conn, spec())
        billing_portal_store.add_token(conn, customer.customer_id, token)
    return token


def _run(case_strategy: Any, headers: dict[str, str], failures: list[str], label: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(case=case_strategy)
    def check(case: Any) -> None:
        try:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:1500]}")

    check()


@pytest.mark.timeout(600)
def test_no_server_error_and_no_schema_violation(pool: Pool) -> None:
    """Every operation, fed generated (valid and invalid) input, answers as documented."""
    staff = {"Authorization": f"Bearer {make_key(pool, Role.ADMIN)[0]}"}
    customer = {"Authorization": f"Bearer {_customer_token(pool)}"}
    app = create_app(pool, require_staff_key=True)
    # Device identity on the in-package fake broker, so its routes answer as in production.
    app.state.devices = DeviceService(
        DeviceStore(pool), MemoryBrokerAccess(),
        ServiceSettings("mqtts://broker.example:8883", "https://tally.example"),
        Clock(), AttemptLimiter(max_failures=3, global_failures=100, window_s=600),
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    # Portal operations first: a generated staff call may revoke the customer's tokens.
    operations.sort(key=lambda op: not op.path.startswith("/portal"))
    assert len(operations) > 30
    for op in operations:
        headers = customer if op.path.startswith("/portal") else staff
        strategy = st.one_of(op.as_strategy(), op.as_strategy(
            generation_mode=schemathesis.GenerationMode.NEGATIVE))
        _run(strategy, headers, failures, f"{op.method.upper()} {op.path}")
    summary = sorted({" | ".join(x for x in f.split("\n")[:8] if x.strip())[:600]
                      for f in failures})
    assert failures == [], f"{len(failures)} failures:\n" + "\n".join(summary[:60])
