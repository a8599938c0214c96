"""Customers, plans and subscriptions against the real database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from collector.billing import accounts
from collector.errors import Conflict, NotFound, ValidationFailed
from collector.storage import billing_store as store
from tests.collector.billing.conftest import make_series, plan_doc, spec, utc


def test_customer_round_trip_and_update(conn: psycopg.Connection[Any]) -> None:
    """A created customer reads back identically and can be updated."""
    c = accounts.create_customer(conn, spec())
    assert store.get_customer(conn, c.customer_id).spec == spec()
    updated = accounts.update_customer(conn, c.customer_id, spec(name="Acme Energy BV"))
    assert updated.spec.name == "Acme Energy BV"


def test_customer_list_paginates_and_filters(conn: psycopg.Connection[Any]) -> None:
    """Listing returns pages with a cursor and filters by name."""
    for i in range(5):
        accounts.create_customer(conn, spec(name=f"Cust {i}" if i != 3 else "Special"))
    page = store.list_customers(conn, limit=2)
    assert len(page.items) == 2
    assert page.next_cursor is not None
    rest = store.list_customers(conn, limit=10, cursor=page.next_cursor)
    assert len(rest.items) == 3
    assert rest.next_cursor is None
    assert [c.spec.name for c in store.list_customers(conn, name_contains="spec").items] == [
        "Special"
    ]


def test_unknown_customer_is_not_found(conn: psycopg.Connection[Any]) -> None:
    """Reading a missing customer raises NotFound."""
    with pytest.raises(NotFound):
        store.get_customer(conn, 999)


def test_bad_customer_is_rejected() -> None:
    """A tax rate of 21 (instead of 0.21) is a validation error."""
    with pytest.raises(ValidationFailed):
        spec(tax="21")


def test_new_plan_version_keeps_old_version(conn: psycopg.Connection[Any]) -> None:
    """Changing a price creates version 2; version 1 is unchanged."""
    plan, v1 = accounts.create_plan(conn, "basic", "Basic", plan_doc("0.25"))
    v2 = accounts.new_plan_version(conn, plan.plan_id, plan_doc("0.30"))
    assert (v1.version, v2.version) == (1, 2)
    assert (
        store.get_plan_version(conn, v1.plan_version_id).document["charges"][0]["price"] == "0.25"
    )
    assert store.get_plan(conn, plan.plan_id).latest_version == 2


def test_plan_versions_are_immutable_in_the_database(conn: psycopg.Connection[Any]) -> None:
    """An UPDATE of a stored plan version is rejected by the trigger."""
    _, v1 = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    with pytest.raises(psycopg.Error) as info:
        conn.execute(
            "UPDATE plan_versions SET document = '{}' WHERE plan_version_id = %s",
            (v1.plan_version_id,),
        )
    assert info.value.sqlstate == "TL001"


def test_invalid_plan_document_is_rejected(conn: psycopg.Connection[Any]) -> None:
    """A plan with a negative price fails validation with the field named."""
    with pytest.raises(ValidationFailed, match="price"):
        accounts.create_plan(conn, "bad", "Bad", plan_doc("-1"))


def test_meter_cannot_be_billed_twice(conn: psycopg.Connection[Any]) -> None:
    """Assigning a meter already subscribed in that time is a conflict."""
    a = accounts.create_customer(conn, spec("A"))
    b = accounts.create_customer(conn, spec("B"))
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    sid = make_series(conn, "dev-1")
    accounts.assign_meter(conn, a.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    with pytest.raises(Conflict):
        accounts.assign_meter(conn, b.customer_id, sid, v.plan_version_id, utc(2026, 3, 1))


def test_move_ends_one_subscription_and_starts_another(conn: psycopg.Connection[Any]) -> None:
    """Moving a meter on the 15th leaves two adjacent subscriptions."""
    a = accounts.create_customer(conn, spec("A"))
    b = accounts.create_customer(conn, spec("B"))
    _, v = accounts.create_plan(conn, "basic", "Basic", plan_doc())
    sid = make_series(conn, "dev-1")
    first = accounts.assign_meter(conn, a.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))
    moved = accounts.move_meter(conn, first.subscription_id, b.customer_id, utc(2026, 3, 15))
    old = store.get_subscription(conn, first.subscription_id)
    assert old.valid_to == utc(2026, 3, 15) == moved.valid_from
    assert moved.customer_id == b.customer_id
    assert moved.valid_to is None


def test_plan_currency_must_match_customer(conn: psycopg.Connection[Any]) -> None:
    """A USD plan cannot bill a EUR customer."""
    a = accounts.create_customer(conn, spec("A"))
    _, v = accounts.create_plan(conn, "usd", "USD", plan_doc(currency="USD", plan_id="usd"))
    sid = make_series(conn, "dev-1")
    with pytest.raises(ValidationFailed, match="USD"):
        accounts.assign_meter(conn, a.customer_id, sid, v.plan_version_id, utc(2026, 1, 1))


def test_tax_rate_is_stored_exactly(conn: psycopg.Connection[Any]) -> None:
    """Tax rates keep their exact decimal value."""
    c = accounts.create_customer(conn, spec(tax="0.095"))
    assert store.get_customer(conn, c.customer_id).spec.tax_rate == Decimal("0.095")
